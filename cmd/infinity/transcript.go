package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
)

// transcript renders history items for people, one line each.
type transcript struct {
	w     io.Writer
	calls map[string]string // call id → tool name
	// stamp renders an item's time; default the local clock time.
	stamp func(infinity.Item) string
}

func newTranscript(w io.Writer) *transcript {
	return &transcript{w: w, calls: map[string]string{}, stamp: func(it infinity.Item) string { return it.At.Local().Format("15:04:05") }}
}

func (t *transcript) line(who string, l daemon.ItemLine) {
	if l.End != "" {
		fmt.Fprintf(t.w, "-- %s\n", l.End)
		return
	}
	if v := l.View; v != nil {
		if who != "" {
			who += "  "
		}
		fmt.Fprintf(t.w, "          %sview %s: %s\n", who, v.Type, clip(string(v.Content), 140))
		return
	}
	it := l.Item
	if it == nil {
		return
	}
	if who != "" {
		who += "  "
	}
	at := t.stamp(*it)
	switch it.Kind {
	case infinity.KindUser:
		fmt.Fprintf(t.w, "%s  %suser> %s\n", at, who, it.Text)
	case infinity.KindAssistant:
		fmt.Fprintf(t.w, "%s  %smodel> %s\n", at, who, strings.ReplaceAll(it.Text, "\n", "\n          "))
	case infinity.KindToolCall:
		t.calls[it.Call.ID] = it.Call.Name
		fmt.Fprintf(t.w, "%s  %scall %s %s\n", at, who, it.Call.Name, clip(string(it.Call.Args), 100))
	case infinity.KindToolResult:
		fmt.Fprintf(t.w, "%s  %sresult %s: %s\n", at, who, t.calls[it.Result.CallID], clip(it.Result.Text(), 140))
	}
}

func printCompactJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
