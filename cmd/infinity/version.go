package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the release, set when building with
// -ldflags "-X main.version=v1.2.3". When it is empty the main module's
// version from the build information is shown, else "dev".
var version string

// versionInfo is what "infinity version" shows.
type versionInfo struct {
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, shortened.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time (RFC 3339).
	Time string `json:"time,omitempty"`
	// Dirty says the work tree had changes the commit does not hold.
	Dirty    bool   `json:"dirty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion reads the version from -ldflags and the build information.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value[:min(len(s.Value), 12)]
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Dirty = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

// String is the version with its details: "v1.2.3 (commit 0123456789ab,
// dirty; go1.26.0 linux/amd64)".
func (v versionInfo) String() string {
	var b strings.Builder
	b.WriteString(v.Version + " (")
	if v.Revision != "" {
		b.WriteString("commit " + v.Revision)
		if v.Dirty {
			b.WriteString(", dirty")
		}
		b.WriteString("; ")
	}
	b.WriteString(v.Go + " " + v.Platform + ")")
	return b.String()
}

func (a *app) versionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [flags]",
		Short: "print the version",
		Long: `Prints the version: the release set at build time, else the module's version
from the build information (else "dev"), with the commit it was built from
(and "dirty" when the work tree had changes), the Go version and the
platform. "infinity --version" prints the same line.`,
		Args:              argsBetween(0, 0),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := buildVersion()
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "infinity", v)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version's fields as JSON")
	return cmd
}
