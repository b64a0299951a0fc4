package actors_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
)

// Threads run on their own models: the agent's default, a root started on
// another of the agent's models, and a child spawn_thread puts on one.
// Responses record the model that gave them; a model the agent does not
// have is refused with the choices named.
func TestThreadModels(t *testing.T) {
	small, err := scripted.New(scripted.Script{Model: "small", Rules: []scripted.Rule{
		{When: scripted.Match{Depth: ip(0), Last: "user", LastText: "delegate"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{
			call("spawn_thread", `{"instructions":"think hard","child_of":"$STACK","model":"other/big"}`),
			call("spawn_thread", `{"instructions":"think hard","child_of":"$STACK","model":"other/huge"}`)}}},
		{When: scripted.Match{Depth: ip(0), LastTool: "spawn_thread"}, Reply: scripted.Reply{Calls: []scripted.CallSpec{call("sleep_until_event_or_input", `{}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Text: "small here"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	big, err := scripted.New(scripted.Script{Model: "big", Rules: []scripted.Rule{
		{When: scripted.Match{Depth: ip(1), LastTool: "spawn_thread"}, Reply: scripted.Reply{Text: "big thoughts", Calls: []scripted.CallSpec{
			call("close_thread", `{"thread_id":"$THREAD","report_to_parent":"thought hard"}`)}}},
		{When: scripted.Match{Depth: ip(0)}, Reply: scripted.Reply{Text: "big here"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, []scripted.Rule{{Reply: scripted.Reply{Text: "unused"}}}, func(c *actors.Config) {
		c.Agents = []actors.Agent{{Name: "a", Provider: small, ProviderName: "scripted", Model: "small",
			Providers: map[string]infinity.ModelProvider{"other": big}}}
	})
	ctx := context.Background()

	choices, err := e.rt.Models(ctx, "")
	if err != nil || !slices.Equal(choices, []string{"other/big", "scripted/small"}) {
		t.Fatalf("Models = %v, %v", choices, err)
	}
	// A root on the agent's other model.
	onBig, err := e.rt.Start(ctx, actors.StartOptions{Text: "hello", Model: "other/big"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the big model's answer", func() bool { return e.last(onBig) == "big here" })
	if got := e.info(onBig).Model; got != "other/big" {
		t.Errorf("root's model = %q", got)
	}
	if own := e.own(onBig); own[len(own)-1].Model != "other/big" {
		t.Errorf("response model = %q, want other/big", own[len(own)-1].Model)
	}
	for _, bad := range []string{"other/nope", "missing/big", "no-slash"} {
		_, err := e.rt.Start(ctx, actors.StartOptions{Text: "hello", Model: bad})
		if !errors.Is(err, infinity.ErrNotFound) && !errors.Is(err, infinity.ErrInvalid) {
			t.Errorf("Start on model %q: %v, want ErrNotFound or ErrInvalid", bad, err)
		}
	}

	// The default model; a child on another; a child on one it lacks.
	root := e.start("delegate please")
	e.waitFor("the child's report", func() bool { return strings.Contains(transcript(e.own(root)), "thought hard") })
	e.settle()
	noErrors(t, e)
	own := e.own(root)
	if own[0].Kind != infinity.KindUser || e.info(root).Model != "" {
		t.Fatalf("root: %+v", e.info(root))
	}
	var models []string
	for _, it := range own {
		if it.Usage != nil {
			models = append(models, it.Model)
		}
	}
	if len(models) == 0 || models[0] != "scripted/small" {
		t.Errorf("root's response models = %v, want scripted/small first", models)
	}
	kids := e.children(root)
	if len(kids) != 1 || kids[0].Model != "other/big" {
		t.Fatalf("children = %+v, want one on other/big", kids)
	}
	if ko := e.own(kids[0].ID); !slices.ContainsFunc(ko, func(it infinity.Item) bool { return it.Model == "other/big" && it.Usage != nil }) {
		t.Errorf("the child's response is not the big model's:\n%s", transcript(ko))
	}
	if tr := transcript(own); !strings.Contains(tr, `provider "other" does not serve "huge"`) || !strings.Contains(tr, "other/big") {
		t.Errorf("the refused spawn does not say why and what there is:\n%s", tr)
	}
}
