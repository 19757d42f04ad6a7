package ledger

import (
	"net/netip"
	"net/url"
	"strings"
)

// ValidateWebhookURL returns why raw is not an acceptable webhook target, or "". Loopback,
// private, link-local and unspecified addresses are refused unless allowPrivate: a webhook
// must not become a way into the operator's own network. Names are checked again, resolved,
// at delivery.
func ValidateWebhookURL(raw string, allowPrivate bool) string {
	if len(raw) > 2048 {
		return "must be at most 2048 characters"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "must be an absolute http or https URL without credentials"
	}
	if allowPrivate {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".internal") {
		return "must not target a loopback or private address"
	}
	if ip, err := netip.ParseAddr(host); err == nil && !PublicAddr(ip) {
		return "must not target a loopback or private address"
	}
	return ""
}

// PublicAddr reports whether ip is routable on the public internet.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) // carrier-grade NAT
}
