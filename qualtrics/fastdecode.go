package qualtrics

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The history and links pages are most of what a sync decodes. Their elements
// are read in one pass over the element's bytes: plain string fields are cut
// out of one string copy of the element (one allocation instead of one per
// field), lenient fields go straight to their parsers, and nothing is
// validated twice (encoding/json has checked the whole body before it calls
// UnmarshalJSON). Anything out of the ordinary — a key that only matches a
// field case-insensitively, an escaped key, a non-string value in a string
// field, a body that is not an object — falls back to the reflective decode,
// so the result, errors included, is the same as encoding/json's.

// fieldSink receives one member of an object; it returns false to give up on
// the fast path.
type fieldSink func(key, raw []byte, start, end int) bool

// scanObject walks the members of the JSON object b, calling fn with each key
// (unquoted, without escapes) and the raw value with its offsets in b. It
// returns false, without a complete walk, if b is not a plain object of
// valid JSON, a key holds an escape, or fn gives up.
func scanObject(b []byte, fn fieldSink) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		ks := i + 1
		ke := ks
		for ke < len(b) && b[ke] != '"' {
			if b[ke] == '\\' {
				return false
			}
			ke++
		}
		if ke >= len(b) {
			return false
		}
		i = skipSpace(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		vs := skipSpace(b, i+1)
		ve := skipValue(b, vs)
		if ve < 0 {
			return false
		}
		if !fn(b[ks:ke], b[vs:ve], vs, ve) {
			return false
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		s := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if i == s {
					return -1
				}
				return i
			}
			i++
		}
		if i == s {
			return -1
		}
		return i
	}
}

// skipString returns the end of the string starting at b[i] (a quote), or -1.
// It jumps from quote to quote (bytes.IndexByte is vectorised); a quote ends
// the string unless an odd run of backslashes escapes it.
func skipString(b []byte, i int) int {
	for i++; ; {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
		i++
	}
}

// elementText is one element's bytes as a string, made once and only when a
// string field needs it.
type elementText struct {
	b []byte
	s string
	n bool
}

// str decodes the raw value of a plain string field into *dst the way
// encoding/json would; false means "not a string or null: take the slow path".
func (e *elementText) str(raw []byte, start, end int, dst *string) bool {
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case 'n':
		return string(raw) == "null" // null leaves a string as it was
	case '"':
	default:
		return false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		// Escapes or bytes to replace: rare, let encoding/json do it.
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		*dst = s
		return true
	}
	if !e.n {
		e.s, e.n = string(e.b), true
	}
	*dst = e.s[start+1 : end-1]
	return true
}

// time parses a lenient time value without copying it when it is
// a plain quoted string.
func (e *elementText) time(raw []byte, start, end int, dst *lenientTime) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		if !e.n {
			e.s, e.n = string(e.b), true
		}
		dst.set(e.s[start+1:end-1], raw)
		return
	}
	_ = dst.UnmarshalJSON(raw)
}

// foldsToAny reports whether key matches one of names the way encoding/json
// matches a key to a field it does not name exactly.
func foldsToAny(key []byte, names []string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

var historyKeys = []string{"contactId", "contactLookupId", "distributionId", "status", "surveyLink", "contactFrequencyRuleId",
	"responseId", "responseCompletedAt", "sentAt", "openedAt", "responseStartedAt", "surveySessionId"}

// decodeFast decodes one history element in one pass; false means the slow
// path must decide.
func (h *HistoryEntry) decodeFast(b []byte) bool {
	if string(bytes.TrimSpace(b)) == "null" {
		*h = HistoryEntry{}
		return true
	}
	var v HistoryEntry
	var t [4]lenientTime
	e := elementText{b: b}
	ok := scanObject(b, func(key, raw []byte, s, end int) bool {
		switch string(key) {
		case "contactId":
			return e.str(raw, s, end, &v.ContactID)
		case "contactLookupId":
			return e.str(raw, s, end, &v.ContactLookupID)
		case "distributionId":
			return e.str(raw, s, end, &v.DistributionID)
		case "status":
			return e.str(raw, s, end, (*string)(&v.Status))
		case "surveyLink":
			return e.str(raw, s, end, &v.SurveyLink)
		case "contactFrequencyRuleId":
			return e.str(raw, s, end, &v.ContactFrequencyRuleID)
		case "responseId":
			return e.str(raw, s, end, &v.ResponseID)
		case "surveySessionId":
			return e.str(raw, s, end, &v.SurveySessionID)
		case "responseCompletedAt":
			e.time(raw, s, end, &t[0])
		case "sentAt":
			e.time(raw, s, end, &t[1])
		case "openedAt":
			e.time(raw, s, end, &t[2])
		case "responseStartedAt":
			e.time(raw, s, end, &t[3])
		default:
			return !foldsToAny(key, historyKeys)
		}
		return true
	})
	if !ok {
		return false
	}
	v.ResponseCompletedAt, v.SentAt, v.OpenedAt, v.ResponseStartedAt = t[0].Time, t[1].Time, t[2].Time, t[3].Time
	noteDate(&v.bad, "responseCompletedAt", t[0])
	noteDate(&v.bad, "sentAt", t[1])
	noteDate(&v.bad, "openedAt", t[2])
	noteDate(&v.bad, "responseStartedAt", t[3])
	*h = v
	return true
}

var linkKeys = []string{"contactId", "transactionId", "link", "exceededContactFrequency", "linkExpiration", "status",
	"firstName", "lastName", "externalDataReference", "email", "unsubscribed"}

// decodeFast decodes one links element in one pass; false means the slow
// path must decide.
func (l *Link) decodeFast(b []byte) bool {
	if string(bytes.TrimSpace(b)) == "null" {
		*l = Link{}
		return true
	}
	var v Link
	var exceeded, unsubscribed lenientBool
	var expiration lenientTime
	var ref lenientString
	e := elementText{b: b}
	ok := scanObject(b, func(key, raw []byte, s, end int) bool {
		switch string(key) {
		case "contactId":
			return e.str(raw, s, end, &v.ContactID)
		case "transactionId":
			return e.str(raw, s, end, &v.TransactionID)
		case "link":
			return e.str(raw, s, end, &v.Link)
		case "status":
			return e.str(raw, s, end, &v.Status)
		case "firstName":
			return e.str(raw, s, end, &v.FirstName)
		case "lastName":
			return e.str(raw, s, end, &v.LastName)
		case "email":
			return e.str(raw, s, end, &v.Email)
		case "exceededContactFrequency":
			_ = exceeded.UnmarshalJSON(raw)
		case "unsubscribed":
			_ = unsubscribed.UnmarshalJSON(raw)
		case "linkExpiration":
			e.time(raw, s, end, &expiration)
		case "externalDataReference":
			if len(raw) > 0 && raw[0] == '"' {
				var str string
				if !e.str(raw, s, end, &str) {
					return false
				}
				ref = lenientString(str)
			} else if ref.UnmarshalJSON(raw) != nil {
				return false
			}
		default:
			return !foldsToAny(key, linkKeys)
		}
		return true
	})
	if !ok {
		return false
	}
	v.ExceededContactFrequency, v.LinkExpiration = bool(exceeded), expiration.Time
	v.ExternalDataReference, v.Unsubscribed = string(ref), bool(unsubscribed)
	noteDate(&v.bad, "linkExpiration", expiration)
	*l = v
	return true
}
