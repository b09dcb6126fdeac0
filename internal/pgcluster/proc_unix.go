//go:build unix

package pgcluster

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// osUser is the unprivileged account the server runs as when this process
// is root.
type osUser struct {
	name     string
	uid, gid int
}

// serverUser is nil unless this process is root, which initdb and postgres
// refuse to be: then the server runs as the postgres account, else nobody.
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &osUser{name: name, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("PostgreSQL refuses to run as root, and there is no postgres or nobody account to run it as; " +
		"create one with `useradd --system --user-group --no-create-home postgres` and run again, " +
		"or set MICROAPPS_DATABASE_URL to an existing server")
}

func sysProcAttr(u *osUser) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}
	}
	return a
}

// quit asks the postmaster for an immediate shutdown; it takes its children
// down with it.
func quit(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// ProcessRunning says whether process pid runs; a zombie, exited but not yet
// reaped by its parent (init, for a daemon), does not.
func ProcessRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc (macOS): signal 0 is all we have
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}
