-- POST /auth/login as PARLEY_LOGIN with PARLEY_PASSWORD.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"login":"%s","password":"%s"}',
  os.getenv("PARLEY_LOGIN"), os.getenv("PARLEY_PASSWORD"))
