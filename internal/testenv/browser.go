package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns a chromedp allocator for a fresh headless Chromium (Debian's package, or
// $CHROMIUM), failing t with the package to install when there is none. The flags keep it off
// the network: this machine's closed network refuses Chromium's background connections.
func Chromium(t testing.TB, ctx context.Context, width, height int) (context.Context, context.CancelFunc) {
	t.Helper()
	exe := os.Getenv("CHROMIUM")
	if exe == "" {
		exe = "chromium"
	}
	path, err := exec.LookPath(exe)
	if err != nil {
		t.Fatalf("the browser tests need headless Chromium: apt-get install chromium (or set CHROMIUM): %v", err)
	}
	return chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
}
