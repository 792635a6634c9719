-- authgate forward-auth for HAProxy 2.6 and later (docs/proxies.md): an
-- http-request action that asks authgate's /verify, with core.httpclient(),
-- whether a request may pass.
--
--   global
--       lua-load /etc/haproxy/authgate.lua
--   frontend www
--       http-request lua.authgate http://127.0.0.1:9086/verify
--
-- 2xx: every copy of the headers in `copied` the client sent is removed (in
-- any case, and with "_" for "-"), then authgate's values are set, empty
-- ones included, and the request goes on to the backend.
-- Any other status goes back to the client as authgate wrote it: status,
-- WWW-Authenticate, Retry-After, Content-Type, DPoP-Nonce and body.
-- authgate unreachable, or no answer within `timeout_ms`: 503.
--
-- authgate must trust the address HAProxy calls it from (TRUSTED_PROXIES),
-- since the original request is described in X-Forwarded-*.

-- Copied from authgate's 2xx to the request: the identity headers
-- (IDENTITY_HEADER_*) and the headers your policy adds.
local copied = { "x-auth-subject", "x-auth-client-id", "x-auth-scopes", "x-authz-scope" }

-- Passed from authgate's refusal to the client (DPoP-Nonce: the nonce a
-- DPoP client must retry with, DPOP_NONCE=true).
local returned = { "www-authenticate", "retry-after", "content-type", "dpop-nonce" }

local timeout_ms = 5000

local copied_set = {}
for _, name in ipairs(copied) do copied_set[name] = true end

-- canonical is a header name as compared here: lower case, "_" read as "-".
local function canonical(name)
  return (string.gsub(string.lower(name), "_", "-"))
end

-- passed reports whether a client's header goes on to authgate: not the
-- ones that describe the request (set below from what HAProxy saw), nor
-- framing ones.
local function passed(name)
  local n = canonical(name)
  if n == "host" or n == "content-length" or n == "transfer-encoding" or n == "connection"
      or n == "keep-alive" or n == "te" or n == "trailer" or n == "upgrade" or n == "expect"
      or n == "forwarded" or n == "x-real-ip" then
    return false
  end
  return string.sub(n, 1, 12) ~= "x-forwarded-" and string.sub(n, 1, 11) ~= "x-original-"
end

-- list turns HAProxy's header values (indexed from 0 by req_get_headers,
-- from 1 elsewhere) into a Lua list.
local function list(values)
  local out = {}
  for i = 0, #values do
    if values[i] ~= nil then out[#out + 1] = values[i] end
  end
  return out
end

local function verify(txn, url)
  local headers = {}
  for name, values in pairs(txn.http:req_get_headers()) do
    if passed(name) then headers[name] = list(values) end
  end
  headers["x-forwarded-method"] = { txn.sf:method() }
  headers["x-forwarded-uri"] = { txn.sf:pathq() }
  local host = txn.sf:req_fhdr("host")
  if host ~= nil and host ~= "" then headers["x-forwarded-host"] = { host } end
  -- ssl_fc is a boolean fetch, which Lua gets as a number or a string:
  -- 0 and "0" are true in Lua, so compare.
  local tls = txn.f:ssl_fc()
  headers["x-forwarded-proto"] = { (tls == true or tls == 1 or tls == "1") and "https" or "http" }
  headers["x-forwarded-for"] = { txn.sf:src() }

  local res = core.httpclient():get{ url = url, headers = headers, timeout = timeout_ms }
  local status = res and tonumber(res.status) or 0
  if status == 0 then
    txn:done{ status = 503, headers = { ["content-type"] = { "text/plain" } },
              body = "authorization service unavailable\n" }
    return
  end
  local answered = res.headers or {}

  if status >= 200 and status < 300 then
    for name in pairs(txn.http:req_get_headers()) do
      if copied_set[canonical(name)] then txn.http:req_del_header(name) end
    end
    for _, name in ipairs(copied) do
      local v = answered[name] and list(answered[name])[1]
      if v ~= nil then txn.http:req_set_header(name, v) end
    end
    return
  end

  local reply = txn:reply{ status = status, body = res.body or "" }
  for _, name in ipairs(returned) do
    for _, v in ipairs(answered[name] and list(answered[name]) or {}) do
      reply:add_header(name, v)
    end
  end
  txn:done(reply)
end

core.register_action("authgate", { "http-req" }, verify, 1)
