// Package qualtrics is the client of the Qualtrics API v3 used by the sync.
//
// One Client serves one integration: it carries that integration's base URL,
// credentials, request timeout and rate budget, and is safe for concurrent use.
// Lists are exposed as iterators that yield one page at a time, so a sync never
// holds more than one page of a brand in memory. The client retries what the API
// says is transient (5xx, 429, network failures, truncated bodies), honours
// Retry-After, and refuses to talk to hosts outside the base URL policy
// (NormalizeBaseURL) even when a nextPage link points elsewhere.
//
// Time fields of the wire types are time.Time in UTC; the zero time means the
// API sent null, an empty string or a value that is not a timestamp. Decoding is
// lenient on purpose: the recorded responses show the same field as a bool, a
// number or a string depending on the year and datacenter, and one odd value must
// not stop a whole sync.
package qualtrics
