package api_test

import (
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/microapps/microapps/store"
)

type pgxTx = pgx.Tx

type storeIntegration = store.Integration

func storeAudit() store.AuditEvent { return store.AuditEvent{} }

func itoa(n int) string { return strconv.Itoa(n) }
