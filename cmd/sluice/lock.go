package main

import "errors"

var errJobLocked = errors.New("another sluice process is running this job")
