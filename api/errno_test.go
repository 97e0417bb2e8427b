package api

import "syscall"

var errEACCES = syscall.EACCES
