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

// ErrForbiddenAddress means a Qualtrics host name resolved to an address the
// service must never call: loopback, private, link-local (cloud metadata),
// and the like. The base URL policy checks names; this checks where they
// lead, so a DNS record pointing a *.qualtrics.com look-alike at an internal
// address cannot turn the service into a proxy.
var ErrForbiddenAddress = errors.New("qualtrics: host resolves to a forbidden address")

var transports sync.Map // allowed-hosts key → *http.Transport

// guardedTransport returns a shared transport, one per allowed-host set, that
// dials only public addresses unless the host is explicitly allowed.
func guardedTransport(allowedHosts []string) http.RoundTripper {
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
			if !publicAddress(ip) {
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

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddress reports whether ip is a routable public unicast address.
func publicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() &&
		!ip.IsLinkLocalUnicast() && !cgnat.Contains(ip) && !(ip.Is6() && ip.As16()[0] == 0xfc || ip.Is6() && ip.As16()[0] == 0xfd)
}
