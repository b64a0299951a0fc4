// Package httpclient holds the two infinity.HTTPClient implementations that
// tools use to reach tool servers:
//
//   - NewPlain: an *http.Client with its own transport and bounded dial, TLS
//     handshake, response header and per-request timeouts, for tool servers
//     on a local network. It never touches http.DefaultClient or
//     http.DefaultTransport.
//   - NewSigV4: a client that signs every request with AWS Signature
//     Version 4 (service "lambda" by default), as IAM-authenticated Lambda
//     Function URLs require, then sends it through an inner client.
//
// The package imports the standard library, the root infinity package, and
// from the AWS SDK v2 only github.com/aws/aws-sdk-go-v2/aws and
// github.com/aws/aws-sdk-go-v2/aws/signer/v4. It deliberately does not import
// github.com/aws/aws-sdk-go-v2/config, whose credential chain would grow the
// Lambda binary: callers load credentials and pass an aws.CredentialsProvider.
package httpclient
