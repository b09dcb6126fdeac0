package qualtrics

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The one-pass decoders must agree with the reflective decode on every input
// encoding/json accepts, errors included.
func FuzzFastDecodeAgrees(f *testing.F) {
	for _, s := range []string{
		`null`, `{}`, ` { } `, `[]`, `1`, `"x"`,
		`{"contactId":"a","sentAt":"2021-06-01T18:59:23.161Z","status":"SurveyStarted","responseId":null}`,
		`{"contactId":"a","contactId":null}`, `{"contactId":"a","contactId":"b"}`, `{"ContactId":"a"}`, `{"CONTACTID":"a"}`,
		`{"contactId":1}`, `{"contactId":"a\u00e9\n"}`, "{\"contactId\":\"\xff\"}", `{"co\u006etactId":"x"}`,
		`{"sentAt":null}`, `{"sentAt":"2021-06-01T18:59:23.161Z","sentAt":null}`, `{"sentAt":" 2021-06-01 18:59:23 "}`,
		`{"sentAt":1}`, `{"sentAt":{"a":[1,"]"]}}`, `{"sentAt":"2021-06-01T18:59:23\u002e161Z"}`,
		`{"unsubscribed":"1","exceededContactFrequency":true,"linkExpiration":"2024-04-01T00:00:00.5Z","externalDataReference":29}`,
		`{"unsubscribed":"TRUE","exceededContactFrequency":"yes","externalDataReference":"r\"1"}`,
		`{"externalDataReference":"x","externalDataReference":null}`, `{"externalDataReference":[1]}`, `{"externalDataReference":{}}`,
		`{"unknown":{"a":{"b":["}",{}]}},"email":"E@x.com","firstName":null,"ſtatus":"x"}`, `{"x":1,"link":"https://l?a=1&b=2"}`,
		`{"contactId":"a","extra":[1,2,{"contactId":"b"}],"surveyLink":"s"}`, `{"email":true}`, `{"status":["x"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // encoding/json never calls UnmarshalJSON with invalid JSON
		}
		var fh, sh HistoryEntry
		if fh.decodeFast(b) {
			err := sh.decodeSlow(b)
			if err != nil || !reflect.DeepEqual(fh, sh) {
				t.Fatalf("history %q: fast %+v, slow %+v (%v)", b, fh, sh, err)
			}
		}
		var fl, sl Link
		if fl.decodeFast(b) {
			err := sl.decodeSlow(b)
			if err != nil || !reflect.DeepEqual(fl, sl) {
				t.Fatalf("link %q: fast %+v, slow %+v (%v)", b, fl, sl, err)
			}
		}
	})
}

var fastPageSeeds []string

// A page the fast path takes must decode the same through encoding/json.
func FuzzFastPageAgrees(f *testing.F) {
	f.Add([]byte(`{"result":{"elements":[],"nextPage":null},"meta":{"requestId":null}}`))
	f.Add([]byte(`{"result":{"elements":null}}`))
	f.Add([]byte(`{"result":{"Elements":[{"contactId":"a"}],"elements":[null, {"sentAt":1} ]}}`))
	f.Add([]byte(`{"result":{"elements":{"a":1}}}`))
	f.Add(historyPage(3))
	for _, s := range fastPageSeeds {
		f.Add([]byte(s))
	}
	f.Add(readTestdata(f, "history-lenient.json"))
	f.Add(readTestdata(f, "links-lenient.json"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if p, ok := decodePageFast[HistoryEntry](body); ok {
			q, err := decodePageReflect[HistoryEntry](body)
			if err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("history page %q: fast %+v, reflect %+v (%v)", body, p, q, err)
			}
		}
		if p, ok := decodePageFast[Link](body); ok {
			q, err := decodePageReflect[Link](body)
			if err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("links page %q: fast %+v, reflect %+v (%v)", body, p, q, err)
			}
		}
	})
}

func init() {
	fastPageSeeds = append(fastPageSeeds,
		`{"result":{"elements":[],"nextPage":"a\u0062"},"meta":{"requestId":"r"}}`, "{\"result\":{\"elements\":[],\"nextPage\":\"\xff\"}}",
		`{"result":{"elements":[],"nextPage":1}}`, `{"result":{},"result":{"elements":[]}}`, `{"Result":{"elements":[]}}`,
		`{"result":{"elements":[],"NEXTPAGE":"x"}}`, `{"result":{"elements":[]},"meta":1}`, `{"meta":{"error":{"errorCode":"x"}},"result":{"elements":[]}}`,
		`null`, `[]`, `{"result":[]}`, `{"result":{"elements":[{}],"elements":[]}}`, ` {"result" : {"elements" : [ {} , null ] , "nextPage" : " x "} } `)
}
