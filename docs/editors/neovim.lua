-- pairls for Neovim 0.7+ (built-in LSP client). Put this in init.lua or :luafile it.
-- The working directory (when this file is loaded) is the workspace: one pairls-lsp
-- serves it, started by the first file buffer or by the first :Pairls command (no
-- file needs to be open), and every file buffer is attached to it; in a room, opened
-- files under the working directory are shared at their path relative to it.
-- Environment: PAIRLS_LSP (the server command), PAIRLS_HUB_URL, PAIRLS_NAME,
-- PAIRLS_DEBOUNCE_MS (didChange debounce, default 150), PAIRLS_INCREMENTAL_SYNC=0
-- (every didChange carries the whole text instead of the changed range).
local pairls = {
  name = 'pairls',
  cmd = { vim.env.PAIRLS_LSP or 'pairls-lsp' },
  root_dir = vim.fn.getcwd(),
  flags = {
    debounce_text_changes = tonumber(vim.env.PAIRLS_DEBOUNCE_MS) or 150,
    allow_incremental_sync = not vim.tbl_contains({ '0', 'false', 'no', 'off' }, vim.env.PAIRLS_INCREMENTAL_SYNC),
  },
  init_options = {
    hubUrl = vim.env.PAIRLS_HUB_URL or 'ws://127.0.0.1:8765',
    displayName = vim.env.PAIRLS_NAME or vim.env.USER,
    autoShare = true,
  },
}

local client_id

-- The pairls client, started if need be, attached to no buffer yet (a command may run
-- before any file is open): 0.11+ vim.lsp.start{attach = false}, before that
-- vim.lsp.start_client (deprecated from 0.11 on).
local function start()
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  if client then return client end
  if vim.fn.has('nvim-0.11') == 1 then
    client_id = vim.lsp.start(pairls, { attach = false })
  else
    client_id = vim.lsp.start_client(pairls)
  end
  return client_id and vim.lsp.get_client_by_id(client_id)
end

local function attach(bufnr)
  if vim.bo[bufnr].buftype ~= '' or vim.api.nvim_buf_get_name(bufnr) == '' then return end
  if start() then vim.lsp.buf_attach_client(bufnr, client_id) end
end
vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, {
  callback = function(ev) attach(ev.buf) end,
})

-- Room commands are workspace/executeCommand with one JSON object argument.
local function command(name, arg, done)
  attach(vim.api.nvim_get_current_buf())
  local client = start()
  if not client then return vim.notify('pairls: could not start pairls-lsp', vim.log.levels.ERROR) end
  -- a client started just now answers `initialize` first (LSP: no request before that)
  vim.wait(15000, function() return client.initialized or not vim.lsp.get_client_by_id(client.id) end, 20)
  if not client.initialized then
    return vim.notify('pairls: pairls-lsp did not start', vim.log.levels.ERROR)
  end
  local params = { command = name, arguments = { arg or vim.empty_dict() } }
  local function handler(err, result)
    if err then return vim.notify('pairls: ' .. err.message, vim.log.levels.ERROR) end
    if done then done(result) else print(vim.inspect(result)) end
  end
  if vim.fn.has('nvim-0.11') == 1 then -- a method since 0.11 (the function form is deprecated)
    client:request('workspace/executeCommand', params, handler, vim.api.nvim_get_current_buf())
  else
    client.request('workspace/executeCommand', params, handler, vim.api.nvim_get_current_buf())
  end
end

vim.api.nvim_create_user_command('PairlsCreate', function(o)
  command('pairls.createRoom', { name = o.args }, function(r)
    vim.fn.setreg('"', r.invite)
    if vim.fn.has('clipboard') == 1 then pcall(vim.fn.setreg, '+', r.invite) end
    print('pairls: invite (copied): ' .. r.invite)
  end)
end, { nargs = '?' })
vim.api.nvim_create_user_command('PairlsJoin', function(o)
  command('pairls.joinRoom', { invite = o.args }, function(r)
    print(('pairls: joined as %s, %d document(s)'):format(r.role, #r.documents))
  end)
end, { nargs = 1 })
vim.api.nvim_create_user_command('PairlsLeave', function() command('pairls.leaveRoom') end, {})
vim.api.nvim_create_user_command('PairlsStatus', function() command('pairls.status') end, {})
vim.api.nvim_create_user_command('PairlsWho', function() command('pairls.participants') end, {})
vim.api.nvim_create_user_command('PairlsOpen', function(o)
  command('pairls.openDocument', { path = o.args }, function(r)
    -- shown already if this Neovim has window/showDocument; 0.7 has not: open it here
    local fname = vim.uri_to_fname(r.uri)
    if vim.fn.resolve(vim.api.nvim_buf_get_name(0)) ~= vim.fn.resolve(fname) then
      local ok, err = pcall(vim.cmd, 'edit ' .. vim.fn.fnameescape(fname))
      if not ok then vim.notify('pairls: ' .. err, vim.log.levels.ERROR) end
    end
  end)
end, { nargs = 1 })
vim.api.nvim_create_user_command('PairlsFollow', function(o)
  command('pairls.follow', o.args ~= '' and { participantId = o.args } or {}, function() end)
end, { nargs = '?' })

-- The room's owner: remove someone, change a role, new invites, delete the room.
-- :PairlsKick [id] and :PairlsRole editor|viewer [id] offer the others to pick from
-- when no participant id is given (ids: :PairlsWho).
local function pick_participant(done)
  command('pairls.participants', nil, function(r)
    local others = vim.tbl_filter(function(p) return not p.self end, r.participants)
    if #others == 0 then return vim.notify('pairls: nobody else is in the room', vim.log.levels.WARN) end
    vim.ui.select(others, {
      prompt = 'Participant',
      format_item = function(p) return ('%s (%s)'):format(p.name, p.role) end,
    }, function(p) if p then done(p.id) end end)
  end)
end
vim.api.nvim_create_user_command('PairlsKick', function(o)
  local function kick(id)
    command('pairls.kick', { participantId = id }, function()
      print('pairls: removed; :PairlsRotateInvites keeps them out for good')
    end)
  end
  if o.args ~= '' then kick(o.args) else pick_participant(kick) end
end, { nargs = '?' })
vim.api.nvim_create_user_command('PairlsRole', function(o)
  local role, id = o.fargs[1], o.fargs[2]
  if role ~= 'editor' and role ~= 'viewer' then
    return vim.notify('pairls: :PairlsRole editor|viewer [participant id]', vim.log.levels.ERROR)
  end
  local function set(pid)
    command('pairls.setRole', { participantId = pid, role = role }, function() print('pairls: now a ' .. role) end)
  end
  if id then set(id) else pick_participant(set) end
end, { nargs = '+', complete = function() return { 'editor', 'viewer' } end })
vim.api.nvim_create_user_command('PairlsRotateInvites', function()
  command('pairls.rotateInvites', nil, function(r)
    vim.fn.setreg('"', r.invite)
    if vim.fn.has('clipboard') == 1 then pcall(vim.fn.setreg, '+', r.invite) end
    print('pairls: new invites, the old ones no longer work; editor (copied): ' .. r.invite .. ' viewer: ' .. r.viewerInvite)
  end)
end, {})
vim.api.nvim_create_user_command('PairlsDeleteRoom', function(o) -- ! skips the question
  local sure = o.bang or vim.fn.confirm('Delete the room and its documents on the hub, for everyone?', '&Delete\n&Cancel', 2) == 1
  if sure then command('pairls.deleteRoom', nil, function() print('pairls: room deleted') end) end
end, { bang = true })

-- History. :PairlsUndo undoes your own last change to this document, whoever typed since
-- (nobody else's text is touched; again and again, further back); :PairlsRedo brings back
-- what you undid last. :PairlsHistory lists the document's changes (who, when, how much,
-- where) and opens the one you pick as it was then; :PairlsOpenRevision N opens revision N,
-- read-only (a file under ~/.cache/pairls/revisions). Hovering (K) a line says who last
-- changed it. Suggested keys (not set here: pick your own):
--   vim.keymap.set('n', '<leader>pu', '<Cmd>PairlsUndo<CR>')
--   vim.keymap.set('n', '<leader>pr', '<Cmd>PairlsRedo<CR>')
--   vim.keymap.set('n', '<leader>ph', '<Cmd>PairlsHistory<CR>')
local function this_document() return { uri = vim.uri_from_bufnr(0) } end
vim.api.nvim_create_user_command('PairlsUndo', function()
  command('pairls.undoMine', this_document(), function(r)
    print(('pairls: undid your last change (rev %d)'):format(r.rev))
  end)
end, {})
vim.api.nvim_create_user_command('PairlsRedo', function()
  command('pairls.redoMine', this_document(), function(r)
    print(('pairls: redid your change (rev %d)'):format(r.rev))
  end)
end, {})
local function open_revision(rev)
  local arg = this_document()
  arg.rev = rev
  command('pairls.openRevision', arg, function(r)
    -- shown already if this Neovim has window/showDocument; 0.7 has not: open it here
    local fname = vim.uri_to_fname(r.uri)
    if vim.fn.resolve(vim.api.nvim_buf_get_name(0)) ~= vim.fn.resolve(fname) then
      local ok, err = pcall(vim.cmd, 'view ' .. vim.fn.fnameescape(fname))
      if not ok then return vim.notify('pairls: ' .. err, vim.log.levels.ERROR) end
    end
    -- (the file is read-only, but root may write it: the buffer says so too)
    local b = vim.fn.bufnr(fname)
    if b ~= -1 then vim.bo[b].readonly, vim.bo[b].modifiable = true, false end
  end)
end
vim.api.nvim_create_user_command('PairlsOpenRevision', function(o)
  local rev = tonumber(o.args)
  if not rev then return vim.notify('pairls: :PairlsOpenRevision N (:PairlsHistory lists them)', vim.log.levels.ERROR) end
  open_revision(rev)
end, { nargs = 1 })
vim.api.nvim_create_user_command('PairlsHistory', function()
  local arg = this_document()
  arg.limit = 100
  command('pairls.history', arg, function(r)
    if #r.changes == 0 then return print('pairls: no changes yet') end
    vim.ui.select(r.changes, {
      prompt = 'Open the document as it was after',
      format_item = function(c)
        local what = c.kind and (c.kind .. ' of rev ' .. tostring(c.toggles)) or ('+' .. c.inserted .. ' -' .. c.deleted)
        local when = type(c.time) == 'string' and c.time:sub(1, 16):gsub('T', ' ') or ''
        local who = c.name ~= '' and c.name or 'first text'
        return ('rev %-5d %-16s %s UTC  %s  line %d'):format(c.rev, who, when, what, c.line + 1)
      end,
    }, function(c) if c then open_revision(c.rev) end end)
  end)
end, {})

-- Run it together. :PairlsRun runs this file with its language's runner (python3, node,
-- go run, cargo run, bash), :PairlsRun {command line} that line, :PairlsRunTask {name} a task
-- of .pairls/run.toml; the output (.pairls/runs/<id>.log) opens read-only and everyone can
-- follow it. :PairlsStopRun stops your run; :PairlsAskToRun {command line} asks someone else
-- (picked from a list) to run it: they choose Run or Decline.
local function show_run(r)
  print(('pairls: running (%s); :PairlsStopRun stops it'):format(r.path))
  command('pairls.openDocument', { path = r.path }, function(o)
    local fname = vim.uri_to_fname(o.uri)
    if vim.fn.resolve(vim.api.nvim_buf_get_name(0)) ~= vim.fn.resolve(fname) then
      local ok, err = pcall(vim.cmd, 'view ' .. vim.fn.fnameescape(fname))
      if not ok then return vim.notify('pairls: ' .. err, vim.log.levels.ERROR) end
    end
    -- read-only (the output comes in as edits from the server, so it stays modifiable)
    local b = vim.fn.bufnr(fname)
    if b ~= -1 then vim.bo[b].readonly = true end
  end)
end
vim.api.nvim_create_user_command('PairlsRun', function(o)
  command('pairls.run', o.args ~= '' and { command = o.args } or this_document(), show_run)
end, { nargs = '?' })
vim.api.nvim_create_user_command('PairlsRunTask', function(o)
  command('pairls.run', { task = o.args }, show_run)
end, { nargs = 1 })
vim.api.nvim_create_user_command('PairlsStopRun', function()
  command('pairls.runs', nil, function(r)
    local mine = vim.tbl_filter(function(x)
      return x.mine == true and (x.state == 'running' or x.state == 'starting')
    end, r.runs)
    if #mine == 0 then return vim.notify('pairls: no run of yours is running', vim.log.levels.WARN) end
    vim.ui.select(mine, {
      prompt = 'Stop',
      format_item = function(x) return x.runId .. '  ' .. x.command end,
    }, function(x) if x then command('pairls.stopRun', { runId = x.runId }, function() print('pairls: stopped') end) end end)
  end)
end, {})
vim.api.nvim_create_user_command('PairlsAskToRun', function(o)
  pick_participant(function(id)
    command('pairls.requestRun', { participantId = id, command = o.args }, function(r)
      if r.accepted then show_run(r) else print('pairls: declined') end
    end)
  end)
end, { nargs = 1 })
