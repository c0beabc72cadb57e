{
  "targets": [
    {
      "target_name": "secp256k1_verify",
      "sources": ["verify.c"],
      "libraries": ["-lsecp256k1"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
