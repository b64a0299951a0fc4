// Package cloudlocal runs the cloud mode on one machine: the emulators
// stand in for the AWS services (PostgreSQL for Aurora DSQL, DynamoDB
// Local, fauxqs for SQS, a Scheduler stand-in), and a Poller stands in for
// the Lambda event source mapping, feeding the real handlers of package
// lambda the same event JSON AWS would. `infinity cloud-local` and the
// cloud end-to-end tests both run on it.
package cloudlocal
