package store

// SetMemRecipientRows sets how many rows a RecipientBatch holds in memory
// (0: stage everything) and returns a function that restores it.
func SetMemRecipientRows(n int) (restore func()) {
	old := memRecipientRows.Swap(int64(n))
	return func() { memRecipientRows.Store(old) }
}
