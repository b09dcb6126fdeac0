// Command microapps is the Qualtrics micro-apps service: an HTTP server with
// background workers (serve), its schema tool (migrate), a zero-configuration
// demo (demo) and a Qualtrics simulator (sim).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/microapps/microapps/migrations"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/replica"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "microapps:", err)
		os.Exit(1)
	}
}

const usage = `usage: microapps <command> [arguments]

commands:
  serve                    run the HTTP server and background workers
  migrate up|down|version  manage the database schema
  demo                     run a self-contained demo (simulated Qualtrics, dev sign-in)
  sim [--addr host:port]   run the Qualtrics simulator alone
  reseal                   re-seal every stored secret with the first encryption key
  check                    connect to everything the configuration names, one line per check
  version                  print the version`

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command given\n" + usage)
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout)
	case "migrate":
		return runMigrate(ctx, args[1:], getenv, stdout)
	case "demo":
		return runDemo(ctx, args[1:], getenv, stdout)
	case "reseal":
		return runReseal(ctx, args[1:], getenv, stdout)
	case "check":
		return runCheck(ctx, args[1:], getenv, stdout)
	case "sim":
		return qualtricssim.Main(ctx, args[1:], stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "microapps", buildVersion())
		return nil
	case "help", "--help", "-h":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// runServe runs one replica until ctx is cancelled (SIGINT, SIGTERM).
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("serve takes no arguments, configuration comes from MICROAPPS_* variables")
	}
	cfg, err := loadConfig(getenv, useServe)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(stdout, false, zapcore.InfoLevel)
	defer log.Sync() //nolint:errcheck
	log.Info("starting microapps", append([]zap.Field{zap.String("version", buildVersion())}, cfg.logFields()...)...)
	cfg.warnStart(log)

	opts := cfg.replicaOptions()
	opts.Now = testClock(getenv)
	a, err := replica.New(ctx, opts, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, nil)
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: microapps migrate up|down|version")
	}
	cfg, err := loadConfig(getenv, useMigrate)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	switch args[0] {
	case "up":
		if err := migrations.Up(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	case "down":
		if err := migrations.Down(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	case "version":
	default:
		return fmt.Errorf("unknown migrate direction %q: use up, down or version", args[0])
	}
	st, err := migrations.Version(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, st.String())
	return nil
}

// newLogger builds the process logger: JSON for machines, console for people
// running the demo.
func newLogger(w io.Writer, console bool, level zapcore.Level) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if console {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		encCfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), level)
	return zap.New(core, zap.ErrorOutput(zapcore.AddSync(w)))
}
