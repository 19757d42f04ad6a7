package notify

import (
	"context"
	"net"
	"time"
)

// CheckedDial exposes the webhook dialer, to test its address check below the URL check.
func CheckedDial(allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return checkedDial(&net.Dialer{Timeout: time.Second}, allowPrivate)
}
