package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/microapps/microapps/internal/pgcluster"
)

// cluster is a throwaway PostgreSQL cluster of one test, on its own port:
// tests that stop or restart PostgreSQL use it and never touch the shared
// server. It is internal/pgcluster's, the one `microapps demo` starts.
type cluster struct {
	t testing.TB
	*pgcluster.Cluster
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.New(ctx, pgcluster.Options{Settings: []string{"fsync=off", "max_connections=60"}})
	if err != nil {
		t.Fatalf("throwaway PostgreSQL cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("removing the throwaway cluster: %v", err)
		}
	})
	return &cluster{t: t, Cluster: c}
}

func (c *cluster) start() error { return c.Start(context.Background()) }
func (c *cluster) stop() error  { return c.Stop(context.Background()) }

// url returns the URL of database name, creating it.
func (c *cluster) url(name string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := c.CreateDatabase(ctx, name)
	if err != nil {
		c.t.Fatal(err)
	}
	return u
}
