package emulators

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Without Install, Start installs nothing: it names every missing piece,
// with how to install it, and the caller's hint.
func TestStartWithoutInstallListsWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	var progress bytes.Buffer
	servers, err := Start(context.Background(), Options{Progress: &progress, InstallHint: "run THE INSTALL COMMAND"}, DynamoDB, SQS)
	if !errors.Is(err, ErrNotInstalled) || servers != nil {
		t.Fatalf("Start = %v, %v; want ErrNotInstalled", servers, err)
	}
	for _, want := range []string{"DynamoDB Local", "npm pack " + DynamoDBPackage, "fauxqs " + FauxqsVersion, "npm install fauxqs@" + FauxqsVersion, dir, "\nrun THE INSTALL COMMAND"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || progress.Len() != 0 {
		t.Fatalf("Start without Install touched the cache (%v) or reported installing: %q", entries, progress.String())
	}
	if _, err := Start(context.Background(), Options{}, Kind("redis")); err == nil || errors.Is(err, ErrNotInstalled) {
		t.Fatalf("an unknown kind: %v", err)
	}
}

// An install step says what it runs before it runs it, that it still
// runs, and how long it took.
func TestStepReportsProgress(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 10 * time.Millisecond
	var out lockedBuffer
	ran := false
	err := Options{Progress: &out}.step("the thing: some command", func() error {
		if !strings.HasPrefix(out.String(), "installing the thing: some command\n") {
			t.Errorf("not announced before it ran: %q", out.String())
		}
		ran = true
		time.Sleep(50 * time.Millisecond)
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("step: %v (ran %v)", err, ran)
	}
	if !strings.Contains(out.String(), "still installing") || !strings.Contains(out.String(), "installed in") {
		t.Fatalf("no progress:\n%s", out.String())
	}
	quiet := Options{}.step("x", func() error { return errors.New("boom") })
	if quiet == nil || quiet.Error() != "boom" {
		t.Fatalf("a quiet step's error: %v", quiet)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
