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

// PublicAddr reports whether ip is routable on the public internet: a global unicast address
// outside IANA's special-purpose ranges that are not globally reachable. An address that
// embeds an IPv4 address (NAT64, 6to4, IPv4-compatible or -mapped) is judged by that address.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false // also excludes unspecified, loopback, link-local and multicast
	}
	for _, p := range notGlobal {
		if p.Contains(ip) {
			return false
		}
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return PublicAddr(v4)
	}
	return true
}

// notGlobal are the IANA IPv4 and IPv6 special-purpose ranges that are not globally reachable
// (besides those netip classifies), and the reserved and benchmarking space.
var notGlobal = prefixes(
	"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
	"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
	"64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
)

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	v4Compat  = netip.MustParsePrefix("::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address of a translation or tunnelling
// range carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case !ip.Is6():
		return netip.Addr{}, false
	case nat64.Contains(ip), v4Compat.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}
