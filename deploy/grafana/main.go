// Command grafana writes microapps' Grafana dashboard, built as code with the
// Grafana Foundation SDK, to deploy/grafana/microapps.json:
//
//	go run ./deploy/grafana            # from the repository's root
//	go run ./deploy/grafana -o -       # to stdout
//
// The JSON is committed; the package's test regenerates it, fails when the
// committed file is not current, parses every query with Prometheus' own
// PromQL parser and checks that every metric it names is exported by a
// running replica (or recorded by deploy/prometheus/recording.yml).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("o", "deploy/grafana/microapps.json", "where to write the dashboard JSON (- for stdout)")
	flag.Parse()
	b, err := dashboardJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grafana:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grafana:", err)
		os.Exit(1)
	}
}
