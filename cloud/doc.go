// Package cloud wires the cloud mode together: it reads a function's
// configuration from the environment (LoadConfig), and builds the AWS
// adapters (persistence/dsql, persistence/dynamodb, mailbox/sqs), the
// engine and the handlers of package lambda from it (Open). The bootstrap
// binary (cmd/infinity-lambda) and the laptop harness (cloudlocal) both go
// through it, so what is tested locally is what runs on Lambda.
//
// What an agent file may use is what the program passes in Options: the
// network model providers (Providers; the bootstrap passes Bedrock) and
// MCP servers (MCP; the bootstrap built with -tags mcp). Anything else the
// file names is refused by Open with an error wrapping
// infinity.ErrNotImplemented that says what is missing. RAP tool servers
// are always available (SigV4-signed, for IAM-auth Function URLs).
package cloud
