package mcp

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// lateSource answers its first caller with tok1, but late: after its
// second caller got tok2 and kept it (or a while).
type lateSource struct {
	calls      atomic.Int32
	inFirst    chan struct{}
	secondKept chan struct{}
}

func (l *lateSource) Token() (*oauth2.Token, error) {
	if l.calls.Add(1) == 1 {
		close(l.inFirst)
		select {
		case <-l.secondKept:
		case <-time.After(300 * time.Millisecond):
		}
		return &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1"}, nil
	}
	return &oauth2.Token{AccessToken: "at-2", RefreshToken: "rt-2"}, nil
}

type memStore struct {
	mu    sync.Mutex
	last  *StoredAuth
	saved func(*StoredAuth)
}

func (m *memStore) Load() (*StoredAuth, error) { return nil, nil }

func (m *memStore) Save(rec *StoredAuth) error {
	m.mu.Lock()
	m.last = rec
	m.mu.Unlock()
	m.saved(rec)
	return nil
}

// Two refreshes racing: the tokens kept last are the newest ones, not
// those of a refresh whose caller came back late (its refresh token was
// rotated away by the next refresh).
func TestSavingSourceKeepsTheNewest(t *testing.T) {
	base := &lateSource{inFirst: make(chan struct{}), secondKept: make(chan struct{})}
	var once sync.Once
	store := &memStore{saved: func(rec *StoredAuth) {
		if rec.Token.AccessToken == "at-2" {
			once.Do(func() { close(base.secondKept) })
		}
	}}
	a := &Authorizer{cfg: OAuthConfig{Name: "notes", Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	s := &savingSource{a: a, base: base, last: "at-0"}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = s.Token() })
	<-base.inFirst
	wg.Go(func() { _, _ = s.Token() })
	wg.Wait()
	if store.last == nil || store.last.Token.RefreshToken != "rt-2" {
		t.Fatalf("kept %+v, want the newest tokens (rt-2)", store.last.Token)
	}
}
