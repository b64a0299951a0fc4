package examples

import (
	"slices"
	"testing"
)

func TestBundled(t *testing.T) {
	if !slices.Contains(Names(), "demo") {
		t.Fatalf("Names() = %v, want demo among them", Names())
	}
	if b, ok := Get("demo"); !ok || len(b) == 0 {
		t.Fatal("the demo example is missing")
	}
	if _, ok := Get("prices"); ok || slices.Contains(Names(), "prices") {
		t.Fatal("the prices file is listed as an agent")
	}
	if _, ok := Get("nope"); ok {
		t.Fatal("Get found an example that does not exist")
	}
}

func TestDemoIsGetDemo(t *testing.T) {
	if b, ok := Get("demo"); !ok || string(b) != string(Demo()) {
		t.Fatal("Demo() differs from Get(\"demo\")")
	}
}
