package main

import "errors"

// The cloud commands ("infinity cloud", "infinity cloud-local") link the AWS
// SDK's SQS, DynamoDB, Scheduler and CloudFormation clients and pgx, which
// the daemon never uses; they are built only with the build tag "cloud"
// (go build -tags cloud ./cmd/infinity). Without it, both commands are
// listed but answer with how to build them (cloud_off.go).

const (
	cloudShort      = "talk to a deployed stack (or cloud-local's): start, send, logs, ls, tree, dlq, migrate"
	cloudLocalUse   = "cloud-local [flags] [MESSAGE]"
	cloudLocalShort = "run the cloud mode here, on stand-ins for SQS, DynamoDB, DSQL and Scheduler"
)

// cloudBuildHint says how to get a binary with the cloud commands.
const cloudBuildHint = `This infinity was built without the cloud commands: they link the AWS SDK
and pgx, which the daemon does not need. Build it with them:
  go build -tags cloud ./cmd/infinity
  go install -tags cloud github.com/infinity-runtime/infinity/cmd/infinity@latest`

// errCloudNotBuilt is what the cloud commands answer in a binary built
// without them.
var errCloudNotBuilt = errors.New("not in this binary (built without the cloud commands): build it with them: go build -tags cloud ./cmd/infinity")
