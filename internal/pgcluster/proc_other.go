//go:build !unix

package pgcluster

import (
	"errors"
	"syscall"
)

type osUser struct {
	name     string
	uid, gid int
}

func serverUser() (*osUser, error) {
	return nil, errors.New("a throwaway PostgreSQL cluster is only supported on Unix-like systems")
}

func sysProcAttr(*osUser) *syscall.SysProcAttr { return nil }
func quit(int) error                           { return errors.New("not supported") }

// ProcessRunning is false: clusters do not run on this system.
func ProcessRunning(int) bool { return false }
