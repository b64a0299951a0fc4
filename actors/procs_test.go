package actors_test

import (
	"runtime"
	"testing"

	"github.com/infinity-runtime/infinity/actors"
)

func TestRaiseProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	cases := []struct {
		name       string
		env        string
		have, want int
	}{
		{"two cores raised", "", 2, actors.MinProcs},
		{"chosen by the environment", "2", 2, 2},
		{"more cores kept", "", 8, 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", c.env)
			runtime.GOMAXPROCS(c.have)
			if got := actors.RaiseProcs(); got != c.want || runtime.GOMAXPROCS(0) != c.want {
				t.Fatalf("RaiseProcs = %d, GOMAXPROCS %d; want %d", got, runtime.GOMAXPROCS(0), c.want)
			}
		})
	}
}
