module github.com/infinity-runtime/infinity

go 1.26
