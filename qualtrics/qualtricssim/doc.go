// Package qualtricssim is a faithful fake of the parts of the Qualtrics API v3 that microapps
// uses, plus a seeded generator of realistic brands to serve from it.
//
// It exists so that the client, the syncer, the demo and the benchmarks can run against the real
// wire format without a Qualtrics account: envelopes, error codes, both pagination styles, uneven
// page sizes, rate limits, OAuth client credentials, event subscriptions and the quirks recorded
// in the project's Qualtrics notes (links without history status, "unsubscribed" as "0", notices
// about proxied requests). It deliberately does not import the qualtrics client package: the
// simulator writes the wire format on its own, so a client bug cannot hide behind a shared type.
//
// Tests drive a [Server] over real HTTP (httptest.NewServer(sim)), change the world through its Go
// API (AddDistribution, SetRecipientStatus, RevokeToken, SetFaults, …) and compare what a sync
// stored with the ground truth returned by Surveys, Distributions and Recipients.
package qualtricssim
