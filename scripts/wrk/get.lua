-- GET with the bearer token in PARLEY_TOKEN (none: unauthenticated).
local token = os.getenv("PARLEY_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
