package qualtrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Endpoint template names, as they appear in RequestEvent.Endpoint, Stats and
// APIError.Endpoint. They are stable: request logs and metrics key on them.
const (
	EndpointWhoAmI                   = "whoami"
	EndpointSurveysList              = "surveys.list"
	EndpointSurveysGet               = "surveys.get"
	EndpointSurveyDefinitionsGet     = "surveydefinitions.get"
	EndpointDistributionsList        = "distributions.list"
	EndpointDistributionsGet         = "distributions.get"
	EndpointDistributionsHistory     = "distributions.history"
	EndpointDistributionsLinks       = "distributions.links"
	EndpointEventSubscriptionsCreate = "eventsubscriptions.create"
	EndpointEventSubscriptionsList   = "eventsubscriptions.list"
	EndpointEventSubscriptionsGet    = "eventsubscriptions.get"
	EndpointEventSubscriptionsDelete = "eventsubscriptions.delete"
)

// DefaultEndpointLimits are Qualtrics' per-endpoint caps in requests per
// minute. They apply whether or not the integration's own budget is enabled,
// because exceeding them only buys 429s.
var DefaultEndpointLimits = map[string]int{
	EndpointDistributionsHistory: 300,
	EndpointDistributionsLinks:   500,
}

// Config of one Client. Zero values pick the defaults documented per field.
type Config struct {
	BaseURL string
	// AllowedHosts are extra host names (any port, http allowed) besides
	// https://*.qualtrics.com, e.g. a local simulator.
	AllowedHosts []string
	Auth         Auth
	// Timeout bounds one HTTP attempt, body included. Default 120 s.
	Timeout time.Duration
	// RequestsPerMinute is the integration's own budget; 0 disables it.
	// Burst defaults to 5.
	RequestsPerMinute int
	Burst             int
	// EndpointLimits override DefaultEndpointLimits per endpoint name.
	EndpointLimits map[string]int
	// MaxAttempts per call, first attempt included. Default 5.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the capped exponential backoff with full
	// jitter. Defaults 500 ms and 30 s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRetryAfter caps how long a Retry-After header may make a call wait.
	// Default 2 min.
	MaxRetryAfter time.Duration
	// Transport replaces http.DefaultTransport (tests, proxies).
	Transport http.RoundTripper
	// Observe is called once per HTTP attempt, from the calling goroutine.
	Observe func(RequestEvent)
	// Limiter is a rate budget shared beyond this client (the brand's, kept
	// in PostgreSQL by the syncer, so every replica and every integration of
	// the brand draws from it). When set it replaces the per-endpoint limits;
	// RequestsPerMinute still applies on top.
	Limiter Limiter
	// MaxThrottled is how many 429 answers in a row one call waits out before
	// it fails. A 429 never uses up one of MaxAttempts. Default 30.
	MaxThrottled int
}

// Limiter is a rate budget shared by many clients.
type Limiter interface {
	// Wait blocks until one request to endpoint may be sent. The client
	// calls it last, right before the request goes out; its errors reach
	// the caller as a *LimiterError.
	Wait(ctx context.Context, endpoint string) error
	// Throttled reports a 429 answer to a request to endpoint and how long
	// the client will wait before trying again, so that every client of the
	// budget holds back as long.
	Throttled(endpoint string, wait time.Duration)
}

// LimiterError is a call that failed in a rate limiter before any request
// was sent: the shared budget's database could not be reached, say, or the
// caller's deadline would pass before its turn. It is no failure of
// Qualtrics and must not be counted as one.
type LimiterError struct {
	Endpoint string
	Err      error
}

func (e *LimiterError) Error() string { return "rate limiter: " + e.Err.Error() }
func (e *LimiterError) Unwrap() error { return e.Err }

// IsLimiterError reports whether err comes from a rate limiter rather than
// from Qualtrics.
func IsLimiterError(err error) bool {
	var le *LimiterError
	return errors.As(err, &le)
}

// RequestEvent describes one HTTP attempt, for the request log and metrics.
// It never holds credentials or bodies.
type RequestEvent struct {
	Method    string
	Endpoint  string // template name, e.g. "distributions.history"
	Host      string
	Path      string // URL path only, never the query
	Status    int    // 0 when no response arrived
	Duration  time.Duration
	RequestID string
	ErrorCode string
	Attempt   int  // 1 for the first attempt
	Retry     bool // the client will retry after this attempt
	Err       error
	// SuggestedHost is the datacenter the API advised in a "Request proxied"
	// notice on this answer; empty otherwise.
	SuggestedHost string
}

// Client talks to the API on behalf of one integration. It is safe for
// concurrent use.
type Client struct {
	base         *url.URL
	allowedHosts []string
	http         *http.Client
	auth         authorizer
	timeout      time.Duration
	maxAttempts  int
	backoffBase  time.Duration
	backoffMax   time.Duration
	maxRetryWait time.Duration
	observe      func(RequestEvent)

	limiter      *rate.Limiter
	endpoints    map[string]*rate.Limiter
	shared       Limiter
	maxThrottled int

	suggested atomic.Pointer[string]

	statsMu   sync.Mutex
	stats     map[string]int
	malformed DecodeWarnings
}

// New checks cfg and builds a Client. The base URL must pass NormalizeBaseURL.
func New(cfg Config) (*Client, error) {
	base, err := NormalizeBaseURL(cfg.BaseURL, cfg.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("qualtrics: %w", err)
	}
	u, _ := url.Parse(base)
	c := &Client{
		base:         u,
		allowedHosts: append([]string(nil), cfg.AllowedHosts...),
		timeout:      orDefault(cfg.Timeout, 120*time.Second),
		maxAttempts:  cfg.MaxAttempts,
		backoffBase:  orDefault(cfg.BackoffBase, 500*time.Millisecond),
		backoffMax:   orDefault(cfg.BackoffMax, 30*time.Second),
		maxRetryWait: orDefault(cfg.MaxRetryAfter, 2*time.Minute),
		observe:      cfg.Observe,
		shared:       cfg.Limiter,
		maxThrottled: cfg.MaxThrottled,
		endpoints:    map[string]*rate.Limiter{},
		stats:        map[string]int{},
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 5
	}
	if c.maxThrottled <= 0 {
		c.maxThrottled = 30
	}
	transport := cfg.Transport
	if transport == nil {
		transport = GuardedTransport(cfg.AllowedHosts)
	}
	c.http = &http.Client{
		Transport: transport,
		// A redirect could carry the token to a host the policy never
		// checked; Qualtrics does not redirect API calls, so none is followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	switch {
	case cfg.Auth.Token != "" && cfg.Auth.OAuth != nil:
		return nil, errors.New("qualtrics: auth: set either a token or an OAuth client, not both")
	case cfg.Auth.Token != "":
		c.auth = staticToken(cfg.Auth.Token)
	case cfg.Auth.OAuth != nil:
		if cfg.Auth.OAuth.ClientID == "" || cfg.Auth.OAuth.ClientSecret == "" {
			return nil, errors.New("qualtrics: auth: OAuth needs a client ID and a client secret")
		}
		tokenURL := u.Scheme + "://" + u.Host + "/oauth2/token"
		c.auth = newOAuthSource(cfg.Auth.OAuth, tokenURL, c.http)
	default:
		return nil, errors.New("qualtrics: auth: a token or an OAuth client is required")
	}
	if cfg.RequestsPerMinute > 0 {
		burst := cfg.Burst
		if burst <= 0 {
			burst = 5
		}
		c.limiter = rate.NewLimiter(perMinute(cfg.RequestsPerMinute), burst)
	}
	limits := map[string]int{}
	for k, v := range DefaultEndpointLimits {
		limits[k] = v
	}
	for k, v := range cfg.EndpointLimits {
		limits[k] = v
	}
	for k, v := range limits {
		if v > 0 {
			c.endpoints[k] = rate.NewLimiter(perMinute(v), 5)
		}
	}
	return c, nil
}

func perMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// BaseURL is the normalised base URL the client was built with.
func (c *Client) BaseURL() string { return c.base.String() }

// SuggestedHost is the datacenter host of the latest "Request proxied" notice,
// e.g. "sjc1.qualtrics.com"; empty while the API has not complained. Calls go
// on working through the proxy; storing the advice is the caller's job.
func (c *Client) SuggestedHost() string {
	if p := c.suggested.Load(); p != nil {
		return *p
	}
	return ""
}

// Stats returns how many HTTP requests the client sent per endpoint name since
// it was built or last reset, retries included (not OAuth token requests).
func (c *Client) Stats() map[string]int {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	out := make(map[string]int, len(c.stats))
	for k, v := range c.stats {
		out[k] = v
	}
	return out
}

// TakeStats returns Stats and resets the counters in one step, so a sync run
// can record exactly its own calls.
func (c *Client) TakeStats() map[string]int {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	out := c.stats
	c.stats = map[string]int{}
	return out
}

// DecodeWarnings are the values a client read leniently since it was built or
// last taken: date values that were there but were no date it could read, and
// were taken as no date (a garbled linkExpiration, say). Pages are not failed
// over one field; these are what a run should warn about.
type DecodeWarnings struct {
	// MalformedDates counts them per endpoint name (EndpointDistributionsLinks, …).
	MalformedDates map[string]int
	// Example is the first of them.
	Example MalformedValue
}

// MalformedValue says where a value that could not be read was, and its shape:
// digits as 9, letters as a or A, punctuation kept ("99/99/9999"), never the
// value itself.
type MalformedValue struct {
	Endpoint string
	Field    string // JSON name, nested ones with their parent: "surveyLink.expirationDate"
	Shape    string
}

// Count is how many values the warnings are about.
func (w DecodeWarnings) Count() int {
	n := 0
	for _, v := range w.MalformedDates {
		n += v
	}
	return n
}

// TakeDecodeWarnings returns what the client read leniently and resets it, so
// a sync run can warn about exactly its own answers, like TakeStats.
func (c *Client) TakeDecodeWarnings() DecodeWarnings {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	out := c.malformed
	c.malformed = DecodeWarnings{}
	if out.MalformedDates == nil {
		out.MalformedDates = map[string]int{}
	}
	return out
}

// noteMalformed adds up the malformed dates of decoded items of one endpoint.
func noteMalformed[T any](c *Client, endpoint string, items []T) {
	if _, ok := any((*T)(nil)).(withMalformed); !ok {
		return
	}
	var sum *malformedDates
	for i := range items {
		addDates(&sum, "", any(&items[i]).(withMalformed).malformed())
	}
	if sum == nil {
		return
	}
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if c.malformed.MalformedDates == nil {
		c.malformed.MalformedDates = map[string]int{}
	}
	if len(c.malformed.MalformedDates) == 0 {
		c.malformed.Example = MalformedValue{Endpoint: endpoint, Field: sum.field, Shape: sum.shape}
	}
	c.malformed.MalformedDates[endpoint] += sum.n
}

type call struct {
	method   string
	endpoint string
	url      *url.URL
	body     []byte
	// idempotent calls retry on 5xx and network errors; others only on 429,
	// which the API answers before doing anything.
	idempotent bool
}

const maxBody = 64 << 20

type attemptResult struct {
	status     int
	requestID  string
	errorCode  string
	notice     string
	retryAfter time.Duration
	hasRA      bool
	err        error
	retryable  bool
	authValue  string
	took       time.Duration
	// unsent: the rate limiter gave up before any HTTP request, so there is
	// nothing for the request log.
	unsent bool
}

func (r attemptResult) duration() time.Duration { return r.took }

// do runs a call with retries. decode is given each 2xx body and returns the
// meta it found; its errors are classified by classifyDecode.
func (c *Client) do(ctx context.Context, cl call, decode func([]byte) (wireMeta, error)) error {
	// A 401 with an OAuth token gets a fresh one and an immediate retry, up
	// to twice: the token can also expire while the request waits for its
	// brand's budget, after the header was written.
	refreshes := 0
	sent, throttled := 0, 0
	var lastErr error
	for attempt := 1; attempt <= c.maxAttempts; attempt++ {
		sent++
		res := c.attempt(ctx, cl, decode)
		if res.err != nil && ctx.Err() != nil {
			c.emit(cl, sent, res, false)
			return fmt.Errorf("qualtrics: %s: %w", cl.endpoint, context.Cause(ctx))
		}
		oauthRetry := res.status == http.StatusUnauthorized && refreshes < 2 && c.auth.invalidate(res.authValue)
		// A 429 says "not now", not "failed": waiting it out does not use up
		// one of the attempts meant for transient failures.
		throttle := res.status == http.StatusTooManyRequests && throttled < c.maxThrottled
		willRetry := oauthRetry || throttle || (res.retryable && res.status != http.StatusTooManyRequests && attempt < c.maxAttempts)
		c.emit(cl, sent, res, willRetry)
		if res.err == nil {
			return nil
		}
		lastErr = res.err
		if !willRetry {
			break
		}
		if oauthRetry {
			// One fresh credential is worth one immediate retry that does not
			// eat into the attempts meant for transient failures.
			refreshes++
			attempt--
			continue
		}
		wait := c.backoff(attempt)
		if throttle {
			throttled++
			attempt--
			// Without Retry-After, back off harder with each 429 in a row.
			wait = c.backoff(throttled)
		}
		if res.hasRA {
			wait = min(res.retryAfter, c.maxRetryWait)
		}
		if throttle && c.shared != nil {
			c.shared.Throttled(cl.endpoint, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("qualtrics: %s: %w", cl.endpoint, context.Cause(ctx))
		case <-t.C:
		}
	}
	var apiErr *APIError
	if errors.As(lastErr, &apiErr) {
		return lastErr
	}
	return fmt.Errorf("qualtrics: %s: %w", cl.endpoint, lastErr)
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffBase << min(attempt-1, 30)
	if d <= 0 || d > c.backoffMax {
		d = c.backoffMax
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func (c *Client) emit(cl call, attempt int, res attemptResult, retry bool) {
	if res.notice != "" {
		if h := suggestedHost(res.notice); h != "" {
			c.suggested.Store(&h)
		}
	}
	if c.observe == nil || res.unsent {
		return
	}
	c.observe(RequestEvent{
		Method: cl.method, Endpoint: cl.endpoint, Host: cl.url.Host, Path: cl.url.Path,
		Status: res.status, Duration: res.duration(), RequestID: res.requestID, ErrorCode: res.errorCode,
		Attempt: attempt, Retry: retry, Err: res.err, SuggestedHost: suggestedHost(res.notice),
	})
}

func (c *Client) attempt(ctx context.Context, cl call, decode func([]byte) (wireMeta, error)) (res attemptResult) {
	// The order matters: the shared (brand) token is taken last, right
	// before the request goes out. A token taken before a wait on the
	// integration's own limiter or on an OAuth token request is spent in
	// one minute of the brand's budget while its call may land in the next,
	// and one window then carries more calls than the cap.
	if err := c.waitLocal(ctx, cl.endpoint); err != nil {
		return attemptResult{err: err, unsent: true}
	}
	hctx, hcancel := context.WithTimeout(ctx, c.timeout)
	name, value, err := c.auth.header(hctx)
	hcancel()
	if err != nil {
		var te *tokenError
		return attemptResult{err: err, retryable: errors.As(err, &te) && te.retryable()}
	}
	if err := c.waitShared(ctx, cl.endpoint); err != nil {
		return attemptResult{err: err, unsent: true}
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	defer func() { res.took = time.Since(start) }()

	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, cl.url.String(), body)
	if err != nil {
		return attemptResult{err: err}
	}
	req.Header.Set(name, value)
	req.Header.Set("Accept", "application/json")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.count(cl.endpoint)
	resp, err := c.http.Do(req)
	if err != nil {
		return attemptResult{err: scrubURLError(err), retryable: cl.idempotent, authValue: value}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	res = attemptResult{status: resp.StatusCode, authValue: value}
	if err != nil {
		res.err, res.retryable = fmt.Errorf("read body: %w", scrubURLError(err)), cl.idempotent
		return res
	}
	if len(raw) > maxBody {
		res.err = errors.New("response body exceeds 64 MiB")
		return res
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		meta, err := decode(raw)
		res.requestID, res.notice = meta.RequestID, meta.Notice
		if err != nil {
			var de *decodeError
			res.err, res.retryable = err, errors.As(err, &de) && de.retryable && cl.idempotent
		}
		return res
	}
	_, meta, _ := decodeEnvelope[struct{}](raw)
	code, msg, reqID := meta.errorFields()
	res.requestID, res.errorCode, res.notice = reqID, code, meta.Notice
	res.err = &APIError{
		Endpoint: cl.endpoint, Method: cl.method, Path: cl.url.Path, StatusCode: resp.StatusCode,
		ErrorCode: code, ErrorMessage: msg, RequestID: reqID,
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		res.retryable = true
	case resp.StatusCode >= 500:
		res.retryable = cl.idempotent
	}
	if res.retryable {
		res.retryAfter, res.hasRA = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// scrubURLError drops the URL from transport errors: nextPage URLs carry
// opaque proxy state that only bloats logs.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// waitLocal waits on the client's own limiters: the integration's budget
// and, without a shared budget, the endpoint's cap.
func (c *Client) waitLocal(ctx context.Context, endpoint string) error {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return &LimiterError{Endpoint: endpoint, Err: err}
		}
	}
	if l := c.endpoints[endpoint]; l != nil && c.shared == nil {
		if err := l.Wait(ctx); err != nil {
			return &LimiterError{Endpoint: endpoint, Err: err}
		}
	}
	return nil
}

// waitShared takes the shared budget's token, if there is one.
func (c *Client) waitShared(ctx context.Context, endpoint string) error {
	if c.shared == nil {
		return nil
	}
	if err := c.shared.Wait(ctx, endpoint); err != nil {
		return &LimiterError{Endpoint: endpoint, Err: err}
	}
	return nil
}

func (c *Client) count(endpoint string) {
	c.statsMu.Lock()
	c.stats[endpoint]++
	c.statsMu.Unlock()
}

// parseRetryAfter reads delay-seconds or an HTTP date. A date in the past
// means "now".
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<30)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
