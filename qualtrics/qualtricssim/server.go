package qualtricssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoint names for Calls. Every request that reaches an endpoint counts, whatever its answer.
const (
	EndpointWhoami             = "whoami"
	EndpointSurveys            = "surveys"
	EndpointSurvey             = "survey"
	EndpointSurveyDefinition   = "survey-definition"
	EndpointDistributions      = "distributions"
	EndpointDistribution       = "distribution"
	EndpointHistory            = "history"
	EndpointLinks              = "links"
	EndpointEventSubscriptions = "eventsubscriptions"
	EndpointOAuthToken         = "oauth2/token"
)

// Options configures New.
type Options struct {
	Brands []*Brand
	// Seed makes fault injection reproducible: the same seed and request order fail the same calls.
	Seed int64
	// Now is the server's clock for rate-limit windows and OAuth expiry; default time.Now.
	Now func() time.Time
	// AccessTokenTTL is the lifetime of OAuth access tokens; default one hour.
	AccessTokenTTL time.Duration
	// Limits replaces DefaultLimits().
	Limits *Limits
	// EventClient posts event callbacks; default a client with EventTimeout.
	EventClient *http.Client
	// EventTimeout bounds each callback; default 5 s.
	EventTimeout time.Duration
}

// Faults are injected failures, changeable at any time with SetFaults.
type Faults struct {
	ErrorRate500 float64       // share of API calls answered 500 with a JSON error envelope
	ErrorRate504 float64       // share answered 504 with a gateway's HTML page, not JSON
	TruncateRate float64       // share of 200 answers whose JSON is cut in half
	Latency      time.Duration // added before every API answer
	// ProxyNoticeHost, when set, adds meta.notice "Request proxied. For faster response times,
	// use this host instead: <host>" and proxy parameters to nextPage, as a wrong datacenter does.
	ProxyNoticeHost string
	// FailPaths answers every call whose URL path ends with a key with that
	// status (500, 502, 503 or 504 the gateway's way; 403 as Qualtrics):
	// one distribution whose history keeps failing, say.
	FailPaths map[string]int
}

// Limits are the per-brand request budgets per minute. Zero means unlimited for that counter.
type Limits struct {
	Disabled         bool // benchmarks: no 429 at all
	BrandPerMinute   int
	HistoryPerMinute int
	LinksPerMinute   int
	// RetryAfter adds a Retry-After header (seconds to the next window) to 429 answers; Qualtrics
	// is not known to send one reliably, so clients must cope either way.
	RetryAfter bool
	// TimeScale runs the limits that many times faster (windows of a minute / TimeScale), so a
	// benchmark meets the rate-limit floor of a large brand in minutes. The client's limits must
	// be scaled the same way. 0 or 1 is real time.
	TimeScale float64
}

// DefaultLimits are the documented Qualtrics limits.
func DefaultLimits() Limits {
	return Limits{BrandPerMinute: 3000, HistoryPerMinute: 300, LinksPerMinute: 500, RetryAfter: true}
}

// Server is an http.Handler answering like Qualtrics for the brands it was given. All methods
// are safe for concurrent use.
type Server struct {
	mux          *http.ServeMux
	now          func() time.Time
	eventClient  *http.Client
	eventTimeout time.Duration

	mu        sync.RWMutex // guards the world below
	brands    []*brandState
	brandByID map[string]*brandState
	tokens    map[string]*credential
	clients   map[string]*oauthClient
	access    map[string]*accessToken
	surveys   map[string]*surveyState
	dists     map[string]*distState
	subs      map[string]*subscription
	ids       *rand.Rand // ids of things created at run time
	ttl       time.Duration

	fmu     sync.Mutex // guards faults, limits, the fault dice and rate windows
	faults  Faults
	limits  Limits
	dice    *rand.Rand
	windows map[string]*window

	cmu       sync.Mutex
	calls     map[string]int
	throttled int
	maxWindow map[string]int // the most calls seen in one window, per counter; guarded by fmu
}

type brandState struct {
	info     Brand // Users/OAuthClients/Surveys/Distributions unused: the maps own the data
	users    map[string]*User
	surveys  []*surveyState
	bySurvey map[string][]*distState
}

type surveyState struct {
	sv    Survey
	brand *brandState
}

type distState struct {
	d         Distribution // d.Recipients is the live slice
	brand     *brandState
	byLookup  map[string]int // skipToken → index
	byContact map[string]int
}

type credential struct {
	brand   *brandState
	user    *User
	revoked bool
}

type window struct {
	start time.Time
	n     int
}

// New returns a server for opts.Brands, copying them.
func New(opts Options) *Server {
	s := &Server{
		now:          opts.Now,
		eventClient:  opts.EventClient,
		eventTimeout: opts.EventTimeout,
		brandByID:    map[string]*brandState{},
		tokens:       map[string]*credential{},
		clients:      map[string]*oauthClient{},
		access:       map[string]*accessToken{},
		surveys:      map[string]*surveyState{},
		dists:        map[string]*distState{},
		subs:         map[string]*subscription{},
		ids:          rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed)),
		ttl:          opts.AccessTokenTTL,
		dice:         rand.New(rand.NewPCG(uint64(opts.Seed), 0xd1ce)),
		windows:      map[string]*window{},
		maxWindow:    map[string]int{},
		calls:        map[string]int{},
		limits:       DefaultLimits(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.eventTimeout <= 0 {
		s.eventTimeout = 5 * time.Second
	}
	if s.eventClient == nil {
		s.eventClient = &http.Client{Timeout: s.eventTimeout}
	}
	if opts.Limits != nil {
		s.limits = *opts.Limits
	}
	for _, b := range opts.Brands {
		s.addBrand(b)
	}
	s.routes()
	return s
}

func (s *Server) addBrand(b *Brand) {
	bs := &brandState{info: *b, users: map[string]*User{}, bySurvey: map[string][]*distState{}}
	bs.info.Users, bs.info.OAuthClients, bs.info.Surveys, bs.info.Distributions = nil, nil, nil, nil
	s.brands = append(s.brands, bs)
	s.brandByID[b.ID] = bs
	for i := range b.Users {
		u := b.Users[i]
		u.Tokens = append([]string(nil), u.Tokens...)
		bs.users[u.ID] = &u
		for _, t := range u.Tokens {
			s.tokens[t] = &credential{brand: bs, user: &u}
		}
	}
	for _, c := range b.OAuthClients {
		s.clients[c.ClientID] = &oauthClient{OAuthClient: c, brand: bs}
	}
	for _, sv := range b.Surveys {
		st := &surveyState{sv: sv, brand: bs}
		bs.surveys = append(bs.surveys, st)
		s.surveys[sv.ID] = st
	}
	for i := range b.Distributions {
		d := b.Distributions[i]
		d.Recipients = append([]Recipient(nil), d.Recipients...)
		s.insertDistribution(bs, d)
	}
}

func (s *Server) insertDistribution(bs *brandState, d Distribution) *distState {
	d.Stats = ComputeStats(d.Recipients)
	ds := &distState{d: d, brand: bs, byLookup: make(map[string]int, len(d.Recipients)), byContact: make(map[string]int, len(d.Recipients))}
	for i := range d.Recipients {
		ds.byLookup[d.Recipients[i].ContactLookupID] = i
		ds.byContact[d.Recipients[i].ContactID] = i
	}
	bs.bySurvey[d.SurveyID] = append(bs.bySurvey[d.SurveyID], ds)
	s.dists[d.ID] = ds
	return ds
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("GET /API/v3/whoami", s.api(EndpointWhoami, s.whoami))
	m.Handle("GET /API/v3/surveys", s.api(EndpointSurveys, s.listSurveys))
	m.Handle("GET /API/v3/surveys/{id}", s.api(EndpointSurvey, s.getSurvey))
	m.Handle("GET /API/v3/survey-definitions/{id}", s.api(EndpointSurveyDefinition, s.getSurveyDefinition))
	m.Handle("GET /API/v3/distributions", s.api(EndpointDistributions, s.listDistributions))
	m.Handle("GET /API/v3/distributions/{id}", s.api(EndpointDistribution, s.getDistribution))
	m.Handle("GET /API/v3/distributions/{id}/history", s.api(EndpointHistory, s.history))
	m.Handle("GET /API/v3/distributions/{id}/links", s.api(EndpointLinks, s.links))
	m.Handle("GET /API/v3/eventsubscriptions", s.api(EndpointEventSubscriptions, s.listSubscriptions))
	m.Handle("POST /API/v3/eventsubscriptions", s.api(EndpointEventSubscriptions, s.createSubscription))
	m.Handle("GET /API/v3/eventsubscriptions/{id}", s.api(EndpointEventSubscriptions, s.getSubscription))
	m.Handle("DELETE /API/v3/eventsubscriptions/{id}", s.api(EndpointEventSubscriptions, s.deleteSubscription))
	m.HandleFunc("POST /oauth2/token", s.oauthToken)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newRequestID(), "", &apiError{http.StatusNotFound, "GSI_1", "Resource not found."})
	})
	s.mux = m
}

// ServeHTTP serves the Qualtrics API under /API/v3/ and OAuth under /oauth2/token. Paths are
// accepted with or without a trailing slash, as Qualtrics does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimRight(p, "/")
		r2.URL.RawPath = ""
		r = r2
	}
	s.mux.ServeHTTP(w, r)
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.fmu.Lock()
	s.faults = f
	s.fmu.Unlock()
}

// Faults returns the injected faults in force.
func (s *Server) Faults() Faults {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.faults
}

// Throttled is how many calls were answered 429 since the server started.
func (s *Server) Throttled() int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.throttled
}

// MaxPerWindow is the most calls a brand (key: brand ID) or one of its limited endpoints (key:
// brand ID + "/history" or "/links") made in one rate-limit window, 429s included.
func (s *Server) MaxPerWindow(key string) int {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.maxWindow[key]
}

// SetLimits replaces the rate limits and forgets the current windows' counts.
func (s *Server) SetLimits(l Limits) {
	s.fmu.Lock()
	s.limits = l
	s.windows = map[string]*window{}
	s.fmu.Unlock()
}

// Limits returns the rate limits in force.
func (s *Server) Limits() Limits {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.limits
}

// Calls returns how many requests reached endpoint (one of the Endpoint constants) since the
// last ResetCalls, failures included.
func (s *Server) Calls(endpoint string) int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.calls[endpoint]
}

// TotalCalls returns the sum of Calls over every endpoint.
func (s *Server) TotalCalls() int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// ResetCalls sets every counter back to zero.
func (s *Server) ResetCalls() {
	s.cmu.Lock()
	s.calls = map[string]int{}
	s.cmu.Unlock()
}

func (s *Server) count(endpoint string) {
	s.cmu.Lock()
	s.calls[endpoint]++
	s.cmu.Unlock()
}

// call is what an API handler knows about the request it answers.
type call struct {
	brand  *brandState
	user   *User
	notice string
}

func (c *call) admin() bool { return c.user.AccountType == AccountBrandAdmin }

type apiError struct {
	status int
	code   string
	msg    string
}

type handler func(r *http.Request, c *call) (any, *apiError)

// api wraps an endpoint with what every Qualtrics call goes through, in the order Qualtrics
// appears to apply it: authentication, rate limits, then the (injected) server trouble.
func (s *Server) api(endpoint string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(endpoint)
		reqID := newRequestID()
		f := s.Faults()
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		notice := ""
		if f.ProxyNoticeHost != "" {
			notice = "Request proxied. For faster response times, use this host instead: " + f.ProxyNoticeHost
		}
		c, ok := s.authenticate(r)
		if !ok {
			writeError(w, reqID, notice, &apiError{http.StatusUnauthorized, "DCD_7", "Unrecognized X-API-TOKEN."})
			return
		}
		c.notice = notice
		if retry, limited := s.limit(c.brand.info.ID, endpoint); limited {
			s.cmu.Lock()
			s.throttled++
			s.cmu.Unlock()
			if retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(retry))
			}
			writeError(w, reqID, notice, &apiError{http.StatusTooManyRequests, "RL_1", "Too many requests. Please wait before retrying."})
			return
		}
		for suffix, status := range f.FailPaths {
			if strings.HasSuffix(r.URL.Path, suffix) {
				if status >= 500 {
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(status)
					_, _ = w.Write([]byte("<html><body><h1>" + strconv.Itoa(status) + " Gateway Time-out</h1></body></html>\n"))
					return
				}
				writeError(w, reqID, notice, &apiError{status, "MSTC_3", "Forbidden."})
				return
			}
		}
		switch s.roll(f.ErrorRate500, f.ErrorRate504) {
		case 500:
			writeJSON(w, http.StatusInternalServerError, map[string]any{"meta": map[string]any{
				"httpStatus": httpStatus(http.StatusInternalServerError),
				"error": map[string]any{
					"errorMessage": "An unexpected error occurred.", "errorCode": "Q_500",
					"instanceId": "ip-10-" + strconv.Itoa(rand.IntN(255)) + "-" + strconv.Itoa(rand.IntN(255)),
				},
				"requestId": reqID,
			}})
			return
		case 504:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusGatewayTimeout)
			_, _ = w.Write([]byte("<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"))
			return
		}
		res, aerr := h(r, c)
		if aerr != nil {
			writeError(w, reqID, notice, aerr)
			return
		}
		body, err := marshal(envelope{Result: res, Meta: meta{HTTPStatus: httpStatus(http.StatusOK), RequestID: reqID, Notice: notice}})
		if err != nil {
			writeError(w, reqID, notice, &apiError{http.StatusInternalServerError, "Q_500", "An unexpected error occurred."})
			return
		}
		if s.chance(f.TruncateRate) {
			body = body[:len(body)/2]
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}

func (s *Server) authenticate(r *http.Request) (*call, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tok := r.Header.Get("X-API-TOKEN"); tok != "" {
		cr, ok := s.tokens[tok]
		if !ok || cr.revoked {
			return nil, false
		}
		return &call{brand: cr.brand, user: cr.user}, true
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		at, ok := s.access[bearer]
		if !ok || !s.now().Before(at.expires) || at.client.revoked {
			return nil, false
		}
		u := at.client.brand.users[at.client.UserID]
		if u == nil {
			return nil, false
		}
		return &call{brand: at.client.brand, user: u}, true
	}
	return nil, false
}

// limit counts the call against fixed one-minute windows of the brand and of the endpoint, and
// says how many seconds to wait when either is spent (0 when Retry-After is switched off).
func (s *Server) limit(brandID, endpoint string) (retryAfter int, limited bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	l := s.limits
	if l.Disabled {
		return 0, false
	}
	now := s.now()
	length := time.Minute
	if l.TimeScale > 1 {
		length = time.Duration(float64(time.Minute) / l.TimeScale)
	}
	start := now.Truncate(length)
	over := false
	check := func(key string, max int) {
		if max <= 0 {
			return
		}
		win := s.windows[key]
		if win == nil || !win.start.Equal(start) {
			win = &window{start: start}
			s.windows[key] = win
		}
		win.n++
		if win.n > max {
			over = true
		}
		if win.n > s.maxWindow[key] {
			s.maxWindow[key] = win.n
		}
	}
	check(brandID, l.BrandPerMinute)
	switch endpoint {
	case EndpointHistory:
		check(brandID+"/"+endpoint, l.HistoryPerMinute)
	case EndpointLinks:
		check(brandID+"/"+endpoint, l.LinksPerMinute)
	}
	if !over {
		return 0, false
	}
	if l.RetryAfter {
		retryAfter = max(1, int(start.Add(length).Sub(now).Seconds()+0.999))
	}
	return retryAfter, true
}

func (s *Server) roll(p500, p504 float64) int {
	if p500 <= 0 && p504 <= 0 {
		return 0
	}
	s.fmu.Lock()
	x := s.dice.Float64()
	s.fmu.Unlock()
	switch {
	case x < p500:
		return 500
	case x < p500+p504:
		return 504
	}
	return 0
}

func (s *Server) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.dice.Float64() < p
}

type meta struct {
	HTTPStatus string     `json:"httpStatus"`
	Error      *wireError `json:"error,omitempty"`
	RequestID  string     `json:"requestId"`
	Notice     string     `json:"notice,omitempty"`
}

type wireError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorCode    string `json:"errorCode"`
}

type envelope struct {
	Result any  `json:"result"`
	Meta   meta `json:"meta"`
}

func httpStatus(code int) string {
	return strconv.Itoa(code) + " - " + http.StatusText(code)
}

func writeError(w http.ResponseWriter, reqID, notice string, e *apiError) {
	writeJSON(w, e.status, struct {
		Meta meta `json:"meta"`
	}{meta{HTTPStatus: httpStatus(e.status), Error: &wireError{e.msg, e.code}, RequestID: reqID, Notice: notice}})
}

// marshal encodes v the way Qualtrics does: '&', '<' and '>' stay as they
// are (recorded answers carry links like "…?Q_CHL=email&Q_DL=…"), where
// json.Marshal would write \u0026.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newRequestID() string {
	a, b := rand.Uint64(), rand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0x3fff|0x8000, b&0xffffffffffff)
}

// pageSize varies between 60 and 100 with the page's position, deterministically, because real
// pages are uneven and a client that assumes a fixed size must fail here first.
func pageSize(key string, start int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	_, _ = h.Write([]byte(strconv.Itoa(start)))
	return 60 + int(h.Sum32()%41)
}

// nextPage is an absolute URL on the host the request came to, keeping its query and replacing
// the cursor, with the proxy parameters a proxied answer carries.
func nextPage(r *http.Request, c *call, param, value string) *string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q[k] = v
	}
	q.Set(param, value)
	if c.notice != "" {
		q.Set("proxyDepth", "1")
		q.Set("proxyInfo", `{"proxyDepth":1}`)
	}
	u := scheme + "://" + r.Host + r.URL.Path + "?" + q.Encode()
	return &u
}

// Time formats seen on the wire: seconds on most resources, milliseconds on history.
const (
	timeSec = "2006-01-02T15:04:05Z"
	timeMs  = "2006-01-02T15:04:05.000Z"
)

func ts(t time.Time, layout string) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(layout)
	return &s
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
