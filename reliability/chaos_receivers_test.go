package reliability

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// chaosMail is the mail relay of the chaos run. It keeps the Message-ID of
// every message it accepts; while dropping, it reads part of a message and
// closes the connection, as a relay that crashes mid-message does.
type chaosMail struct {
	addr     string
	hist     *history
	dropping atomic.Bool

	mu       sync.Mutex
	received map[string]int // Message-ID (without brackets) → messages accepted
	dropped  int
}

func startChaosSMTP(t testing.TB, hist *history) *chaosMail {
	t.Helper()
	m := &chaosMail{hist: hist, received: map[string]int{}}
	srv := smtp.NewServer(m)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return m
}

func (m *chaosMail) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &chaosMailSession{m: m, conn: c}, nil
}

type chaosMailSession struct {
	m    *chaosMail
	conn *smtp.Conn
	to   []string
}

func (s *chaosMailSession) Reset()        { s.to = nil }
func (s *chaosMailSession) Logout() error { return nil }
func (s *chaosMailSession) Mail(string, *smtp.MailOptions) error {
	return nil
}
func (s *chaosMailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *chaosMailSession) Data(r io.Reader) error {
	if s.m.dropping.Load() {
		_, _ = io.CopyN(io.Discard, r, 200)
		s.m.mu.Lock()
		s.m.dropped++
		s.m.mu.Unlock()
		s.m.hist.add("delivery", "email dropped mid-message", map[string]any{"to": s.to})
		_ = s.conn.Conn().Close()
		return io.ErrUnexpectedEOF
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return err
	}
	id := strings.Trim(msg.Header.Get("Message-ID"), "<> ")
	s.m.mu.Lock()
	s.m.received[id]++
	n := s.m.received[id]
	s.m.mu.Unlock()
	s.m.hist.add("delivery", "email", map[string]any{"messageId": id, "to": s.to, "copy": n})
	return nil
}

// Modes of the webhook receiver.
const (
	hookOK int32 = iota
	hookFail
	hookHang
)

// hookReceiver is the integrations' webhook endpoint: it keeps the
// Idempotency-Key of every POST it accepts; in a burst it answers 500, or
// hangs longer than the sender waits.
type hookReceiver struct {
	hist *history
	mode atomic.Int32

	mu       sync.Mutex
	received map[string]int // Idempotency-Key → POSTs accepted
	refused  int
	noKey    int
}

func newHookReceiver(hist *history) *hookReceiver {
	return &hookReceiver{hist: hist, received: map[string]int{}}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	key := r.Header.Get("Idempotency-Key")
	switch h.mode.Load() {
	case hookFail:
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
		h.hist.add("delivery", "webhook answered 500", map[string]any{"key": key})
		http.Error(w, "down", http.StatusInternalServerError)
		return
	case hookHang:
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
		h.hist.add("delivery", "webhook hangs", map[string]any{"key": key})
		select {
		case <-r.Context().Done():
		case <-time.After(15 * time.Second):
		}
		return
	}
	h.mu.Lock()
	if key == "" {
		h.noKey++
	}
	h.received[key]++
	n := h.received[key]
	h.mu.Unlock()
	h.hist.add("delivery", "webhook", map[string]any{"key": key, "path": r.URL.Path, "copy": n})
	w.WriteHeader(http.StatusNoContent)
}
