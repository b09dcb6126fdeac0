package qualtrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// wireMeta is the "meta" of every answer. Old answers (2015) put the error
// straight into meta (errorMessage, internalErrorCode, errorId); both shapes
// are read.
type wireMeta struct {
	RequestID string `json:"requestId"`
	Notice    string `json:"notice"`
	Error     *struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorCode    string `json:"errorCode"`
	} `json:"error"`
	ErrorMessage      string `json:"errorMessage"`
	InternalErrorCode string `json:"internalErrorCode"`
	ErrorID           string `json:"errorId"`
}

func (m *wireMeta) errorFields() (code, msg, requestID string) {
	code, msg, requestID = m.InternalErrorCode, m.ErrorMessage, m.RequestID
	if m.Error != nil {
		code, msg = m.Error.ErrorCode, m.Error.ErrorMessage
	}
	if requestID == "" {
		requestID = m.ErrorID
	}
	return code, msg, requestID
}

type envelope[T any] struct {
	Result T        `json:"result"`
	Meta   wireMeta `json:"meta"`
}

type pageResult[T any] struct {
	Elements []T    `json:"elements"`
	NextPage string `json:"nextPage"`
}

// page is one decoded list answer.
type page[T any] struct {
	Elements []T
	NextPage string
	Meta     wireMeta
}

// decodeError marks a 2xx body that could not be decoded. Syntax errors and
// truncation mean the transfer went wrong, so they are worth retrying; a body
// of the wrong shape will not get better by asking again.
type decodeError struct {
	err       error
	retryable bool
}

func (e *decodeError) Error() string { return "decode response: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func classifyDecode(err error) error {
	var syn *json.SyntaxError
	retry := errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	return &decodeError{err: err, retryable: retry}
}

// nulEscape is how a NUL character can appear in a JSON text: only as this
// escape inside a string (a raw NUL byte is no valid JSON).
var nulEscape = []byte(`\u0000`)

// stripNULs removes every NUL character from the strings of the JSON text
// body, before anything decodes it: PostgreSQL refuses NUL in text (SQLSTATE
// 22021), so one survey name with \u0000 made a unit's COPY fail on every run.
// It works on the escapes, so every string of every answer is covered in one
// place; an escape is a real one when an even number of backslashes precedes
// its own (\\u0000 is the text "\u0000", kept). A body without the escape is
// returned as it is, not copied.
func stripNULs(body []byte) []byte {
	i := bytes.Index(body, nulEscape)
	if i < 0 {
		return body
	}
	out := make([]byte, 0, len(body))
	for i >= 0 {
		n := 0
		for j := i - 1; j >= 0 && body[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			out = append(out, body[:i]...)
		} else {
			out = append(out, body[:i+len(nulEscape)]...) // an escaped backslash, then "u0000"
		}
		body = body[i+len(nulEscape):]
		i = bytes.Index(body, nulEscape)
	}
	return append(out, body...)
}

func decodeEnvelope[T any](body []byte) (T, wireMeta, error) {
	body = stripNULs(body)
	var env envelope[T]
	if err := json.Unmarshal(body, &env); err != nil {
		var zero T
		return zero, wireMeta{}, classifyDecode(err)
	}
	return env.Result, env.Meta, nil
}

// decodePage decodes a list answer. It returns no elements on error, and never
// a nil slice on success, so a caller can tell "empty page" from "no page".
func decodePage[T any](body []byte) (page[T], error) {
	body = stripNULs(body)
	var env envelope[*pageResult[T]]
	if err := json.Unmarshal(body, &env); err != nil {
		return page[T]{}, classifyDecode(err)
	}
	if env.Result == nil {
		return page[T]{}, classifyDecode(errors.New("list answer has no result"))
	}
	p := page[T]{Elements: env.Result.Elements, NextPage: strings.TrimSpace(env.Result.NextPage), Meta: env.Meta}
	if p.Elements == nil {
		p.Elements = []T{}
	}
	return p, nil
}

var noticeHost = regexp.MustCompile(`(?i)use this host instead:\s*([a-z0-9][a-z0-9.-]*[a-z0-9])`)

// suggestedHost extracts the datacenter advice of a proxied request.
func suggestedHost(notice string) string {
	m := noticeHost.FindStringSubmatch(notice)
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// lenientTime accepts RFC 3339 with or without fractional seconds, a few
// zone-less forms seen in exports, and turns null, "" or garbage into the zero
// time rather than failing a whole page over one field. Garbage (a value that
// is there but is no date it knows) is noted in shape, so a run can warn.
type lenientTime struct {
	time.Time
	// shape is the shape of a value that could not be read (shapeOf); ""
	// for a date, null, or an empty string.
	shape string
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func (t *lenientTime) UnmarshalJSON(b []byte) error {
	*t = lenientTime{}
	if string(b) == "null" {
		return nil
	}
	var s string
	// Timestamps never hold escapes, so the common case skips a second
	// decode of the value into a string.
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		s = string(b[1 : len(b)-1])
	} else if json.Unmarshal(b, &s) != nil {
		t.shape = shapeOf(b) // a number, an object, …
		return nil
	}
	v, ok := parseLenientTime(s)
	t.Time = v
	if !ok {
		t.shape = shapeOf(b)
	}
	return nil
}

// parseLenientTime is lenientTime's reading of a string: the zero time for
// anything it does not recognise, and false when that was not an empty string.
func parseLenientTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC(), true
		}
	}
	return time.Time{}, false
}

// maxShape bounds the runes of a shape.
const maxShape = 40

// shapeOf describes a raw JSON value without its content: digits become 9,
// letters a (A when upper case), anything else outside printable ASCII ?,
// punctuation and quotes stay: "31/12/2026" is "99/99/9999". It tells what
// form a bad date takes without carrying a person's data into logs.
func shapeOf(raw []byte) string {
	var b strings.Builder
	n := 0
	for _, r := range string(bytes.TrimSpace(raw)) {
		if n == maxShape {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r >= '0' && r <= '9':
			b.WriteByte('9')
		case r >= 'A' && r <= 'Z':
			b.WriteByte('A')
		case unicode.IsLetter(r):
			b.WriteByte('a')
		case r > ' ' && r < 0x7f:
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte(' ')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// malformedDates notes the date values of one decoded item that were there
// but could not be read (and were read as no date): how many, and the first
// one's JSON field and shape. The client adds them up (TakeDecodeWarnings).
type malformedDates struct {
	n     int
	field string
	shape string
}

// noteDate counts t in *m if it could not be read; field is its JSON name.
// *m stays nil while every date is fine, so items cost one pointer.
func noteDate(m **malformedDates, field string, t lenientTime) {
	if t.shape == "" {
		return
	}
	if *m == nil {
		*m = &malformedDates{field: field, shape: t.shape}
	}
	(*m).n++
}

// addDates counts a nested object's notes, its fields under prefix
// ("surveyLink.").
func addDates(m **malformedDates, prefix string, o *malformedDates) {
	if o == nil || o.n == 0 {
		return
	}
	if *m == nil {
		*m = &malformedDates{field: prefix + o.field, shape: o.shape}
	}
	(*m).n += o.n
}

// withMalformed is a decoded item that may hold malformed dates.
type withMalformed interface{ malformed() *malformedDates }

// lenientBool reads true/false, "0"/"1", 0/1 and "true"/"false"; anything
// else (null included) is false.
type lenientBool bool

func (v *lenientBool) UnmarshalJSON(b []byte) error {
	// The spellings the API actually sends, without building strings.
	switch string(b) {
	case "true", "1", `"1"`:
		*v = true
		return nil
	case "false", "0", `"0"`, "null":
		*v = false
		return nil
	}
	s := strings.ToLower(strings.Trim(string(bytes.TrimSpace(b)), `"`))
	switch s {
	case "true", "1", "yes", "y", "t":
		*v = true
	default:
		if f, err := strconv.ParseFloat(s, 64); err == nil && f != 0 {
			*v = true
			return nil
		}
		*v = false
	}
	return nil
}

// lenientInt reads numbers and numeric strings ("1000"); anything else is 0.
type lenientInt int

func (v *lenientInt) UnmarshalJSON(b []byte) error {
	*v = 0
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*v = lenientInt(n)
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1<<53 {
		*v = lenientInt(f)
	}
	return nil
}

// lenientString reads strings, and numbers or bools as their JSON text, since
// fields such as externalDataReference come as either.
type lenientString string

func (v *lenientString) UnmarshalJSON(b []byte) error {
	*v = ""
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = lenientString(s)
		return nil
	}
	if b[0] == '{' || b[0] == '[' {
		return nil
	}
	*v = lenientString(b)
	return nil
}
