package budget

import "testing"

func TestSourceKeepsIPv4AndAnIPv6Slash64(t *testing.T) {
	t.Parallel()
	for remote, want := range map[string]string{
		"203.0.113.7:443":         "203.0.113.7",
		"[::ffff:203.0.113.7]:1":  "203.0.113.7",
		"[2001:db8:1:2::5]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::]:1": "2001:db8:1:2::/64",
		"not an address":          "?",
	} {
		if got := Source(remote); got != want {
			t.Errorf("Source(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestASetSpendsPerKeyAndStaysBounded(t *testing.T) {
	t.Parallel()
	s := New(0.001, 2)
	if s.Empty("a") {
		t.Fatal("a key never seen is empty")
	}
	if !s.Of("a").Allow() || !s.Of("a").Allow() || s.Of("a").Allow() || !s.Empty("a") {
		t.Fatal("a burst of 2 did not allow exactly 2")
	}
	if !s.Of("b").Allow() {
		t.Error("another key shares a's budget")
	}
	for i := range maxKeys + 1 {
		s.Of(string(rune(i)) + "x")
	}
	if len(s.m) > maxKeys {
		t.Errorf("%d budgets kept, want at most %d", len(s.m), maxKeys)
	}
}
