package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 40: 1000} {
		for range 50 {
			d := Delay(100, 1000, n)
			if d < want/2 || d > want {
				t.Fatalf("Delay(100, 1000, %d) = %d, want within [%d, %d]", n, d, want/2, want)
			}
		}
	}
	if d := Delay(0, 0, 3); d != 0 {
		t.Fatalf("no base, no max: %v", d)
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
