package store

import (
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestZZStats(t *testing.T) {
	p := os.Getenv("STATS_DB")
	if p == "" {
		t.Skip()
	}
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := db.Stats()
	t.Logf("free pages %d pending %d free alloc %d", st.FreePageN, st.PendingPageN, st.FreeAlloc)
	db.View(func(tx *bolt.Tx) error {
		t.Logf("tx size %d", tx.Size())
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			t.Logf("%-18s keys %9d  leafAlloc %11d leafInuse %11d branchAlloc %10d overflow %d inline %d", name, s.KeyN, s.LeafAlloc, s.LeafInuse, s.BranchAlloc, s.LeafOverflowN, s.InlineBucketInuse)
			return nil
		})
	})
}
