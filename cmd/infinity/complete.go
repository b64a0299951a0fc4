package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/examples"
)

// completeTimeout bounds the daemon's answer to a completion: a shell
// waits for it.
const completeTimeout = 2 * time.Second

// Which threads a command's completion offers.
var (
	isOpen       = func(v daemon.ThreadView) bool { return v.Status != daemon.StatusClosed }
	isClosedRoot = func(v daemon.ThreadView) bool { return v.Status == daemon.StatusClosed && v.Parent == "" }
	hasChoice    = func(v daemon.ThreadView) bool { return len(v.Choices) > 0 }
)

// completeThreads completes a THREAD first argument with the ids of the
// daemon's threads that keep accepts (all when keep is nil). Without a
// daemon it offers nothing, and says nothing.
func (a *app) completeThreads(keep func(daemon.ThreadView) bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.threadIDs(cmd.Context(), toComplete, keep), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeAnswer completes answer's THREAD (threads waiting for a choice)
// and CHOICE (the labels of the thread's first pending choice).
func (a *app) completeAnswer() cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return a.threadIDs(cmd.Context(), toComplete, hasChoice), cobra.ShellCompDirectiveNoFileComp
		case 1:
			c, err := a.client()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
			defer cancel()
			t, err := c.Thread(ctx, infinity.ThreadID(args[0]))
			if err != nil || len(t.Choices) == 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, label := range t.Choices[0].Choices {
				if strings.HasPrefix(label, toComplete) {
					out = append(out, label)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// threadIDs lists the ids of the daemon's threads starting with prefix,
// each described by its agent and status.
func (a *app) threadIDs(ctx context.Context, prefix string, keep func(daemon.ThreadView) bool) []cobra.Completion {
	c, err := a.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	ts, err := c.Threads(ctx, false)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, t := range ts {
		if strings.HasPrefix(string(t.ID), prefix) && (keep == nil || keep(t)) {
			out = append(out, cobra.CompletionWithDesc(string(t.ID), t.Agent+", "+statusText(t)))
		}
	}
	return out
}

// exampleNames completes the names of the bundled examples.
func exampleNames(prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range examples.Names() {
		if strings.HasPrefix(n, prefix) {
			out = append(out, cobra.CompletionWithDesc(n, exampleDescription(n)))
		}
	}
	return out
}
