package main

import (
	"context"
	"io"

	"github.com/microapps/microapps/qualtrics/qualtricssim"
)

func init() {
	extraCommands["sim"] = func(ctx context.Context, args []string, _ func(string) string, stdout io.Writer) error {
		return qualtricssim.Main(ctx, args, stdout)
	}
}
