//go:build !cloud

package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
)

// cloudBuilt says whether this binary has the cloud commands.
const cloudBuilt = false

func (a *app) cloudCommand() *cobra.Command {
	return cloudMissing("cloud [command]", cloudShort)
}

func (a *app) cloudLocalCommand() *cobra.Command {
	return cloudMissing(cloudLocalUse, cloudLocalShort)
}

// cloudMissing stands for a cloud command in a binary built without them:
// listed in the help, it takes any arguments and answers with how to build
// a binary that has it.
func cloudMissing(use, short string) *cobra.Command {
	c := &cobra.Command{
		Use:                use,
		Short:              short,
		Long:               short + ".\n\n" + cloudBuildHint,
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs,
		ValidArgsFunction:  cobra.NoFileCompletions,
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if slices.Contains(args, "--help") || slices.Contains(args, "-h") {
			return cmd.Help()
		}
		return fmt.Errorf("%s: %w", cmd.Name(), errCloudNotBuilt)
	}
	return c
}
