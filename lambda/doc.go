// Package lambda holds the handlers of the cloud mode's Lambda functions:
// the agent handler (an SQS FIFO batch in, one slice per message group,
// batch item failures out), the delay relay and the RAP receiver. They are
// plain functions over aws-lambda-go's event types, tested by calling them
// with real event JSON; cmd/infinity-lambda starts them with lambda.Start
// and package cloudlocal drives them on a laptop.
//
// It imports the engine (actors), the root package and aws-lambda-go's
// events; the AWS adapters are wired in by its callers.
package lambda
