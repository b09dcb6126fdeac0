package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LSN is a position in PostgreSQL's write-ahead log (a pg_lsn, written
// "16/B374D848").
type LSN uint64

// ParseLSN reads an LSN as PostgreSQL writes it.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("store: %q is not an LSN", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("store: %q is not an LSN", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// WALPosition is how far the primary has flushed its write-ahead log. Every
// transaction that committed before the call is at or before it: commits
// are synchronous (synchronous_commit on, PostgreSQL's default; only event
// applies turn it off, and they are no user's write), so a commit has
// flushed its record when it returns. It is the flush position, not the
// insert position, because a standby replays exactly up to it: the
// walsender sends only flushed WAL, and the flush position is a record's
// end, as the replay position is, while the insert position may point past
// the header of a page no record has reached yet, which an idle primary's
// standby would never replay.
func (s *Store) WALPosition(ctx context.Context) (LSN, error) {
	var v string
	if err := s.pool.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn()::text`).Scan(&v); err != nil {
		return 0, mapErr("wal position", err)
	}
	return ParseLSN(v)
}

// ReplayPosition is how far a streaming standby has replayed its primary's
// write-ahead log. standby is false when the server is not in recovery (a
// primary, or a standby that was promoted); the position is then zero.
func (s *Store) ReplayPosition(ctx context.Context) (pos LSN, standby bool, err error) {
	var v string
	if err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn()::text, '')`).
		Scan(&standby, &v); err != nil {
		return 0, false, mapErr("replay position", err)
	}
	if !standby || v == "" {
		return 0, false, nil
	}
	pos, err = ParseLSN(v)
	return pos, true, err
}

// OpenStandby opens a pool on a streaming standby without connecting: the
// standby is optional, and the service starts and serves from the primary
// while it is down. A connection attempt gives up after 2 s unless the URL
// says otherwise (connect_timeout), so a standby that stopped answering
// costs a page little before it falls back to the primary.
func OpenStandby(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's message would quote the URL, password included.
		return nil, errors.New("store: the read database URL cannot be parsed")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.AppName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.AppName
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	}
	cfg.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: read database: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Read targets, the values ReadRouterOptions.OnRead is called with.
const (
	ReadPrimary = "primary"
	ReadReplica = "replica"
)

// ReadRouterOptions tune a ReadRouter. The zero value is usable.
type ReadRouterOptions struct {
	// MaxLag is how far behind the primary the standby may be and still be
	// read: it is read only while it holds every write the primary had
	// committed MaxLag ago. Zero: 5 s.
	MaxLag time.Duration
	// CheckEvery is how often the standby's replay position and the
	// primary's WAL position are read. Zero: 1 s.
	CheckEvery time.Duration
	// OnRead is called once per decision with ReadPrimary or ReadReplica
	// (a metric counts them).
	OnRead func(target string)
	// OnChange is called when the standby becomes usable (why nil) or stops
	// being usable (why says why), once per change, so the caller logs it
	// once rather than on every page.
	OnChange func(usable bool, why error)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// ReadRouter decides, request by request, whether the pages may read from a
// streaming standby (MICROAPPS_DATABASE_READ_URL) or must read from the
// primary. Writes and jobs never ask it: they use the primary's Store.
//
// The standby is read only when three things hold:
//
//   - It answered the last check and is in recovery. A standby that is down
//     is noticed at the next check (every CheckEvery), or at once when a
//     read on it fails (ReadFailed); its pages are served from the primary
//     meanwhile, and readiness, which asks only the primary, stays green.
//
//   - It is no more than MaxLag behind. Lag is measured in WAL, not with
//     pg_last_xact_replay_timestamp(): that is the time of the last
//     transaction replayed, which on an idle primary grows old although the
//     standby is fully caught up. Each check reads the primary's WAL
//     position P at time t first, then the standby's replay position R;
//     when R ≥ P, the standby holds everything committed on the primary
//     by t. The router keeps the samples (t, P) of the last MaxLag, and
//     the standby is as fresh as the newest sample it has passed. An idle
//     primary's P stops moving and the standby stays fresh; a standby whose
//     replay stalls falls behind by the clock, MaxLag after the first write
//     it has not replayed. If the checks themselves stop (the primary is
//     unreachable), the newest sample ages and the primary is used.
//
//   - It has replayed the user's own last write (read-your-writes). After
//     a write, the pages hand the browser the primary's WAL position
//     (WritePosition) in a short-lived cookie, and the next pages read from
//     the standby only once its replay position, as of the last check,
//     has passed it. The replay position only grows, so the check's value
//     is a safe lower bound. See web's markWrites.
type ReadRouter struct {
	primary, standby *Store
	opts             ReadRouterOptions

	state atomic.Pointer[standbyState]
	kick  chan struct{}

	mu      sync.Mutex // the checker's; held across a check
	samples []walSample

	cancel context.CancelFunc
	done   chan struct{}
}

// standbyState is what the last check found.
type standbyState struct {
	ok        bool      // answered and is in recovery
	why       error     // when not ok
	replayed  LSN       // replay position at the check
	freshAsOf time.Time // it holds every write the primary had committed then
	usable    bool      // ok and within MaxLag at the check, for OnChange
	checked   bool      // false until the first check: its finding is always reported
}

type walSample struct {
	at  time.Time
	pos LSN
}

// NewReadRouter starts checking standby against primary. Close stops it;
// the stores stay open (their owner closes them).
func NewReadRouter(primary, standby *Store, opts ReadRouterOptions) *ReadRouter {
	if opts.MaxLag <= 0 {
		opts.MaxLag = 5 * time.Second
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &ReadRouter{primary: primary, standby: standby, opts: opts, kick: make(chan struct{}, 1),
		cancel: cancel, done: make(chan struct{})}
	r.state.Store(&standbyState{why: errors.New("not checked yet")})
	go r.run(ctx)
	return r
}

// Close stops the checks.
func (r *ReadRouter) Close() {
	r.cancel()
	<-r.done
}

// Primary is the primary's store.
func (r *ReadRouter) Primary() *Store { return r.primary }

// Standby is the standby's store: read-only, and to be read only when
// UseStandby says so.
func (r *ReadRouter) Standby() *Store { return r.standby }

// UseStandby says whether a request may read from the standby, given the
// primary's WAL position after its user's last write (zero: none known),
// and counts the decision.
func (r *ReadRouter) UseStandby(after LSN) bool {
	st := r.state.Load()
	use := st.ok && r.opts.Now().Sub(st.freshAsOf) <= r.opts.MaxLag && st.replayed >= after
	r.count(use)
	return use
}

// ReadFailed records that a read on the standby failed (err) or found
// nothing (err wraps ErrNotFound: a row the standby has not replayed yet,
// from a link in a notification sent a moment ago), and that the request
// reads again from the primary. A failure other than not-found stops the
// standby's use until a check finds it answering again, except an error the
// request's own data caused (SQLSTATE class 22, data exception: a NUL byte
// or invalid UTF-8 in a parameter), which the primary would answer alike:
// one client must not turn the standby off for everyone.
func (r *ReadRouter) ReadFailed(err error) {
	r.count(false)
	if errors.Is(err, ErrNotFound) || errors.Is(err, context.Canceled) || clientDataError(err) {
		return
	}
	for {
		old := r.state.Load()
		if !old.ok {
			break
		}
		next := *old
		next.ok, next.usable, next.why = false, false, fmt.Errorf("a read failed: %w", err)
		if r.state.CompareAndSwap(old, &next) {
			r.changed(old, &next)
			break
		}
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// clientDataError says whether err is PostgreSQL's answer to a value the
// request sent (class 22, data exception), not a fault of the server.
func clientDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}

// WritePosition is the primary's WAL position now: called after a write, it
// is at or past that write.
func (r *ReadRouter) WritePosition(ctx context.Context) (LSN, error) {
	return r.primary.WALPosition(ctx)
}

// StandbyStatus is what the last check found, for metrics and tests.
type StandbyStatus struct {
	OK        bool      // the standby answered and is in recovery
	Err       error     // why not, when not OK
	Replayed  LSN       // its replay position
	FreshAsOf time.Time // it holds every write the primary had committed then
}

// Status is what the last check found.
func (r *ReadRouter) Status() StandbyStatus {
	st := r.state.Load()
	return StandbyStatus{OK: st.ok, Err: st.why, Replayed: st.replayed, FreshAsOf: st.freshAsOf}
}

// Check reads the positions now rather than at the next tick (tests).
func (r *ReadRouter) Check(ctx context.Context) { r.check(ctx) }

func (r *ReadRouter) count(standby bool) {
	if r.opts.OnRead == nil {
		return
	}
	if standby {
		r.opts.OnRead(ReadReplica)
	} else {
		r.opts.OnRead(ReadPrimary)
	}
}

func (r *ReadRouter) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.opts.CheckEvery)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
			// A failed read: check again, but not in a tight loop.
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(r.opts.CheckEvery, 200*time.Millisecond)):
			}
		}
	}
}

// check reads the primary's WAL position, then the standby's replay
// position, and stores what follows (see ReadRouter).
func (r *ReadRouter) check(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, max(r.opts.CheckEvery, 2*time.Second))
	defer cancel()
	at := r.opts.Now()
	if p, err := r.primary.WALPosition(cctx); err == nil {
		r.samples = append(r.samples, walSample{at: at, pos: p})
	}
	// Samples older than MaxLag cannot make the standby fresh enough.
	keep := 0
	for keep < len(r.samples)-1 && at.Sub(r.samples[keep].at) > r.opts.MaxLag+r.opts.CheckEvery {
		keep++
	}
	r.samples = r.samples[keep:]

	next := &standbyState{checked: true}
	rep, standby, err := r.standby.ReplayPosition(cctx)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		next.why = fmt.Errorf("the read replica does not answer: %w", err)
	case !standby:
		next.why = errors.New("the read database is not a standby in recovery (pg_is_in_recovery() is false): " +
			"MICROAPPS_DATABASE_READ_URL must name a streaming replica of MICROAPPS_DATABASE_URL")
	default:
		next.ok, next.replayed = true, rep
		for i := len(r.samples) - 1; i >= 0; i-- {
			if r.samples[i].pos <= rep {
				next.freshAsOf = r.samples[i].at
				break
			}
		}
		if next.freshAsOf.IsZero() {
			next.why = fmt.Errorf("the read replica lags more than %v behind the primary", r.opts.MaxLag)
		}
	}
	next.usable = next.ok && r.opts.Now().Sub(next.freshAsOf) <= r.opts.MaxLag
	if next.ok && !next.usable && next.why == nil {
		next.why = fmt.Errorf("the read replica lags more than %v behind the primary", r.opts.MaxLag)
	}
	old := r.state.Swap(next)
	r.changed(old, next)
}

func (r *ReadRouter) changed(old, next *standbyState) {
	if r.opts.OnChange == nil || (old.checked && old.usable == next.usable) {
		return
	}
	if next.usable {
		r.opts.OnChange(true, nil)
	} else {
		r.opts.OnChange(false, next.why)
	}
}
