package qualtrics

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestPublicAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"52.5.10.20", true},
		{"2600:1f18::1", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"::ffff:127.0.0.1", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"224.0.0.1", false},
		// Issue 18 item 7: all judged public before.
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::1", false},  // 6to4 of 169.254.169.254
		{"::7f00:1", false},           // IPv4-compatible 127.0.0.1
		{"fec0::1", false},            // site-local
		{"0.1.2.3", false},            // "this network"
		{"240.0.0.1", false},          // reserved
		{"198.18.0.1", false},         // benchmarking
		{"192.0.0.8", false},          // IETF protocol assignments
		{"255.255.255.255", false},
		{"192.0.2.1", false},
		{"2001:db8::1", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
		{"fe80::1%eth0", false},
		// Issue 31: SIIT's IPv4-translated form (::ffff:0:0:0/96) was judged
		// by its IPv6 value, so [::ffff:0:7f00:1] (127.0.0.1) was public.
		{"::ffff:0:7f00:1", false},
		{"::ffff:0:a9fe:a9fe", false}, // 169.254.169.254
		{"::ffff:0:a00:1", false},     // 10.0.0.1
		{"::ffff:0:3405:a14", true},   // 52.5.10.20 stays public
		// The embedded forms of a public address stay public.
		{"64:ff9b::3405:a14", true}, // NAT64 of 52.5.10.20
		{"2002:3405:a14::1", true},  // 6to4 of 52.5.10.20
		{"::ffff:52.5.10.20", true},
		{"1.1.1.1", true},
	} {
		if got := PublicAddress(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("PublicAddress(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

func TestGuardedDialRefusesInternalAddressesUnlessAllowed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &net.Dialer{Timeout: 2 * time.Second}
	ctx := context.Background()

	// "localhost" stands in for a DNS name that resolves to loopback.
	if _, err := guardedDial(nil, d)(ctx, "tcp", "localhost:"+port); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("a name resolving to loopback was dialled: %v", err)
	}
	conn, err := guardedDial([]string{"localhost"}, d)(ctx, "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("an allowed host was refused: %v", err)
	}
	conn.Close()
}
