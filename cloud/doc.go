// Package cloud wires the cloud mode together: it reads a function's
// configuration from the environment (LoadConfig), and builds the AWS
// adapters (persistence/dsql, persistence/dynamodb, mailbox/sqs), the
// engine and the handlers of package lambda from it (Open). The bootstrap
// binary (cmd/infinity-lambda) and the laptop harness (cloudlocal) both go
// through it, so what is tested locally is what runs on Lambda.
package cloud
