package qualtrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrForbiddenAddress means a host name resolved to an address the service
// must never call: loopback, private, link-local (cloud metadata), an IANA
// special-purpose range, or an IPv6 form embedding one of those. The base URL
// policy checks names; this checks where they lead, so a DNS record pointing
// a *.qualtrics.com look-alike (or a webhook host) at an internal address
// cannot turn the service into a proxy.
var ErrForbiddenAddress = errors.New("host resolves to a forbidden address")

var transports sync.Map // allowed-hosts key → *http.Transport

// GuardedTransport returns a shared transport, one per allowed-host set, that
// dials only public addresses (see PublicAddress) unless the host is
// explicitly allowed, and never through a proxy from the environment. The
// Qualtrics client and webhook delivery both call out through it. It does not
// follow redirects by itself; a client using it must not follow them either
// (or re-check every hop): the Qualtrics client and the webhook client refuse
// them.
func GuardedTransport(allowedHosts []string) *http.Transport {
	allowed := make([]string, 0, len(allowedHosts))
	for _, h := range allowedHosts {
		allowed = append(allowed, strings.ToLower(strings.TrimSpace(h)))
	}
	slices.Sort(allowed)
	key := strings.Join(allowed, ",")
	if t, ok := transports.Load(key); ok {
		return t.(*http.Transport)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy would dial for us and bypass the address check
	t.DialContext = guardedDial(allowed, &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	t.MaxIdleConnsPerHost = 16
	actual, _ := transports.LoadOrStore(key, t)
	return actual.(*http.Transport)
}

func guardedDial(allowed []string, d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if slices.Contains(allowed, strings.ToLower(host)) {
			return d.DialContext(ctx, network, addr)
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var lastErr error = fmt.Errorf("%w: %s has no address", ErrForbiddenAddress, host)
		for _, ip := range ips {
			if !PublicAddress(ip) {
				lastErr = fmt.Errorf("%w: %s → %s", ErrForbiddenAddress, host, ip)
				continue
			}
			// Dial the address that was checked, not the name again, so a
			// second DNS answer cannot swap in another one.
			conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return conn, nil
			}
			lastErr = err
		}
		return nil, lastErr
	}
}

// specialPurpose are the IANA IPv4 and IPv6 special-purpose ranges (RFC 6890
// and its updates) and the other blocks no public service lives in. The IPv6
// forms that embed an IPv4 address (IPv4-mapped and -compatible, NAT64, 6to4)
// are checked by the address inside them instead, in PublicAddress.
var specialPurpose = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.31.196.0/24", // AS112
		"192.52.193.0/24", // AMT
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // private
		"192.175.48.0/24", // AS112 direct delegation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and the limited broadcast address
		"::/128",          // unspecified
		"::1/128",         // loopback
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments, Teredo (2001::/32) among them
		"2001:db8::/32",   // documentation
		"3fff::/20",       // documentation
		"5f00::/16",       // SRv6 SIDs
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated, still routed by some stacks)
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var (
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	v4Compatible = netip.MustParsePrefix("::/96")
	// v4Translated is SIIT's IPv4-translated form ::ffff:0:a.b.c.d (RFC
	// 2765), not the IPv4-mapped ::ffff:a.b.c.d that Unmap handles: a
	// translator on the path delivers it to the IPv4 address inside.
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// PublicAddress reports whether ip is a routable public unicast address: not
// in any special-purpose range, and, for the IPv6 forms that carry an IPv4
// address (::ffff:a.b.c.d, ::ffff:0:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d, 2002:AABB:CCDD::),
// only when that IPv4 address is public too.
func PublicAddress(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip), v4Translated.Contains(ip),
			v4Compatible.Contains(ip) && ip != netip.IPv6Unspecified() && ip != netip.IPv6Loopback():
			return PublicAddress(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return PublicAddress(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range specialPurpose {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
