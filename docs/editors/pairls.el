;;; pairls.el --- pair programming in Emacs through eglot and pairls-lsp  -*- lexical-binding: t; -*-

;; Put this file somewhere and add to your init file:
;;
;;   (setq pairls-hub-url "ws://HOST:8765")   ; or set PAIRLS_HUB_URL
;;   (load "/path/to/pairls.el")
;;
;; Works with the eglot of Emacs 28 (Debian's elpa-eglot 1.9) and later.
;; Every file buffer of a project is managed by one pairls-lsp per project:
;; M-x eglot (or `eglot-ensure') starts it, and so does any pairls command run
;; in a file's buffer.  M-x pairls-create-room puts the invite in the kill
;; ring; your partner runs M-x pairls-join-room and yanks it.  In a room, every
;; file you visit in the project is shared at its path relative to the project
;; root; if the room already has that path, the room's text replaces yours.
;;
;; The project root of a file is the first of:
;;
;;   1. the nearest directory, from its own upwards, holding a `.pairls'
;;      file (or directory: `pairls-root-marker').  pairls.el adds this rule
;;      to `project-find-functions', on Emacs 28 and 29+ alike, ahead of the
;;      VC rule: `touch .pairls' at the top of a folder that is not a VC
;;      checkout (or of the part of a checkout you want to share);
;;   2. its VC root (git, hg...: project.el's `project-try-vc'); on Emacs 29+
;;      also the nearest directory holding one of `project-vc-extra-root-markers'
;;      (empty by default);
;;   3. else the file's own directory (eglot's "transient" project): files
;;      you visit in other directories, subdirectories included, are then
;;      not shared (a pairls command there starts another pairls-lsp, in no
;;      room).
;;
;; A `.project' file makes no root by itself, on Emacs 28 or (by default) 29+.
;;
;; Eglot 1.9 runs one server per buffer: while pairls manages a mode, no other
;; language server (pylsp, clangd...) does.

;;; Code:

(require 'eglot)
(require 'jsonrpc)
(require 'cl-lib)
(require 'project)

(defgroup pairls nil "Real-time pair programming through pairls-lsp." :group 'tools)

(defcustom pairls-hub-url (getenv "PAIRLS_HUB_URL")
  "The hub's websocket URL (ws://HOST:PORT).
nil lets pairls-lsp use $PAIRLS_HUB_URL."
  :type '(choice (const nil) string))

(defcustom pairls-display-name (or (getenv "PAIRLS_NAME") user-full-name user-login-name)
  "Your name as the other participants see it."
  :type 'string)

(defcustom pairls-auto-share t
  "Non-nil: in a room, share every project file you visit."
  :type 'boolean)

(defcustom pairls-server-command (list (or (getenv "PAIRLS_LSP") "pairls-lsp"))
  "The command that runs the language server (program and arguments)."
  :type '(repeat string))

(defcustom pairls-modes '(prog-mode text-mode)
  "Major modes (and modes derived from them) whose buffers pairls manages."
  :type '(repeat symbol))

(defcustom pairls-root-marker ".pairls"
  "A file name that makes the directory holding it a project root.
The nearest directory above a file with a file (or directory) of
this name is the root of that file's project, for eglot and every
other user of project.el; nil turns the rule off.  See the
commentary of pairls.el for the other rules."
  :type '(choice (const :tag "None" nil) string))

(defvar pairls-last-status nil
  "The last `pairls/status' notification of the server (a plist).")

(defvar pairls-last-invite nil "The invite of the room you created last.")

;;; The project root: a directory with a `pairls-root-marker' (project.el of Emacs 28
;;; knows only VC roots; eglot falls back to the file's own directory).

(defun pairls-project-find (dir)
  "The pairls project of DIR, for `project-find-functions'.
It is `(pairls . ROOT)', ROOT being the nearest directory above DIR
that holds a `pairls-root-marker'; nil if there is none."
  (let ((root (and pairls-root-marker (locate-dominating-file dir pairls-root-marker))))
    (and root (cons 'pairls (file-name-as-directory (expand-file-name root))))))

(cl-defmethod project-root ((project (head pairls)))
  (cdr project))

;; ahead of `project-try-vc': a marker inside a checkout wins over the checkout
(add-hook 'project-find-functions #'pairls-project-find)

;;; The eglot server class: our own, so that settings apply to pairls only.

(defclass pairls-eglot-server (eglot-lsp-server) ()
  :documentation "An eglot connection to pairls-lsp.")

(cl-defmethod eglot-initialization-options ((_server pairls-eglot-server))
  (append (and pairls-hub-url (list :hubUrl pairls-hub-url))
          (list :displayName (or pairls-display-name "someone")
                :autoShare (if pairls-auto-share t :json-false))))

(cl-defmethod eglot-handle-request
  ((_server pairls-eglot-server) (_method (eql 'workspace/applyEdit)) &rest _)
  "Apply the partner's edits without asking and without a message.
eglot 1.9 asks before every server-initiated edit by default."
  (let ((eglot-confirm-server-initiated-edits nil)
        (inhibit-message t)
        (message-log-max nil))
    (cl-call-next-method)))

(cl-defmethod eglot-client-capabilities ((_server pairls-eglot-server))
  "eglot's capabilities, plus window/showDocument, which the method below handles.
Without saying so the server does not send it (LSP: only to clients that can)."
  (let* ((caps (cl-call-next-method))
         (window (plist-get caps :window)))
    (plist-put caps :window (plist-put window :showDocument (list :support t)))))

(cl-defmethod eglot-handle-request
  ((_server pairls-eglot-server) (_method (eql 'window/showDocument))
   &key uri takeFocus selection &allow-other-keys)
  "Open a room document, or follow a participant (eglot 1.9 has no showDocument)."
  (let ((buf (find-file-noselect (eglot--uri-to-path uri))))
    (if (eq takeFocus t) (pop-to-buffer buf) (display-buffer buf))
    (when selection
      (with-current-buffer buf
        (goto-char (eglot--lsp-position-to-point (plist-get selection :start)))))
    (list :success t)))

(cl-defmethod eglot-handle-notification
  ((_server pairls-eglot-server) (_method (eql 'pairls/status)) &rest status)
  (setq pairls-last-status status)
  (force-mode-line-update t))

(cl-defmethod eglot-handle-notification
  ((_server pairls-eglot-server) (_method (eql 'pairls/participants)) &rest _))

(cl-defmethod eglot-handle-notification
  ((_server pairls-eglot-server) (_method (eql 'pairls/cursors)) &rest _))

(add-to-list 'eglot-server-programs
             `(,pairls-modes . (pairls-eglot-server . ,(lambda (&rest _) pairls-server-command))))

;;; Commands

(defun pairls--current ()
  (let ((s (eglot-current-server))) (and (cl-typep s 'pairls-eglot-server) s)))

(defun pairls--server ()
  "The pairls server of the current buffer, started if need be."
  (or (pairls--current)
      (progn
        (unless buffer-file-name
          (user-error "pairls: visit a file of your project first"))
        (call-interactively #'eglot)
        ;; eglot may go on connecting in the background (pairls-lsp takes a moment to start)
        (with-timeout (15 nil)
          (while (not (pairls--current)) (accept-process-output nil 0.05)))
        (or (pairls--current)
            (user-error "pairls: eglot did not start pairls-lsp for this buffer")))))

(defun pairls--request (server method params timeout)
  "Send SERVER the request METHOD with PARAMS; wait TIMEOUT seconds for its result.
Unlike `jsonrpc-request', this never leaves the process filter by a
`throw': jsonrpc 1.0.14 (Emacs 28) does, when the reply arrives, and any
message that came in the same read after the reply (the applyEdit that
follows a join, say) then waits for the server's next output."
  (let (done result failure)
    (jsonrpc-async-request
     server method params
     :success-fn (lambda (r) (setq result r done t))
     :error-fn (jsonrpc-lambda (&key message &allow-other-keys)
                 (setq failure (or message "request failed") done t))
     :timeout-fn (lambda () (setq failure "timed out" done t))
     :timeout timeout)
    (while (not done) (accept-process-output nil 0.05))
    (when failure (user-error "pairls: %s" failure))
    result))

(defun pairls-command (command &optional arg)
  "Run the pairls-lsp COMMAND (e.g. \"pairls.status\") with ARG; return its result.
ARG is a plist (the command's one JSON object argument)."
  (pairls--request (pairls--server) :workspace/executeCommand
                   (list :command command :arguments (vector (or arg eglot--{})))
                   30))

(defun pairls-create-room (&optional name)
  "Create a room (optionally called NAME); the invite goes to the kill ring."
  (interactive (list (read-string "Room name (optional): ")))
  (let* ((r (pairls-command "pairls.createRoom" (list :name (or name ""))))
         (invite (plist-get r :invite)))
    (setq pairls-last-invite invite)
    (kill-new invite)
    (message "pairls: room created; invite (in the kill ring): %s" invite)
    r))

(defun pairls-join-room (invite)
  "Join the room of INVITE (http://HOST:PORT/room/ID#SECRET, or the older ws:// form)."
  (interactive (list (read-string "pairls invite: "
                                  (let ((k (ignore-errors (current-kill 0 t))))
                                    (and k (string-match-p "\\`[ \t\n]*\\(https?\\|wss?\\)://[^ \t\n]*/room/" k)
                                         (string-trim k))))))
  (let ((r (pairls-command "pairls.joinRoom" (list :invite (string-trim invite)))))
    (message "pairls: joined room %s as %s (%d document(s))"
             (plist-get r :roomId) (plist-get r :role) (length (plist-get r :documents)))
    r))

(defun pairls-leave-room ()
  "Leave the room."
  (interactive)
  (pairls-command "pairls.leaveRoom")
  (message "pairls: left the room"))

(defun pairls-share-buffer ()
  "Share the current buffer (when `pairls-auto-share' is off)."
  (interactive)
  (pairls-command "pairls.shareDocument" (list :uri (eglot--path-to-uri buffer-file-name))))

(defun pairls-open-document (path)
  "Open the room's document PATH."
  (interactive "sDocument path in the room: ")
  (pairls-command "pairls.openDocument" (list :path path)))

(defun pairls-status ()
  "Show the connection, room and documents; return the status plist."
  (interactive)
  (let ((st (pairls-command "pairls.status")))
    (when (called-interactively-p 'any)
      (message "pairls: %s, room %s as %s; %s"
               (if (eq (plist-get st :connected) t) "connected" "NOT connected")
               (or (plist-get st :roomId) "-") (or (plist-get st :role) "-")
               (let ((docs (plist-get st :documents)) out)
                 (while docs
                   (let ((d (cadr docs)))
                     (push (format "%s rev %s%s" (substring (symbol-name (car docs)) 1)
                                   (plist-get d :rev)
                                   (if (eq (plist-get d :pending) t) " (sending)" ""))
                           out))
                   (setq docs (cddr docs)))
                 (if out (string-join (nreverse out) ", ") "no document shared"))))
    st))

(defun pairls-participants ()
  "List the room's participants."
  (interactive)
  (let ((ps (plist-get (pairls-command "pairls.participants") :participants)))
    (message "pairls: %s"
             (mapconcat (lambda (p) (format "%s (%s)%s" (plist-get p :name) (plist-get p :role)
                                            (if (plist-get p :path)
                                                (format " in %s" (plist-get p :path)) "")))
                        ps ", "))
    ps))

;;; The room's owner: remove someone, change a role, new invites, delete the room.

(defun pairls--read-participant (prompt)
  "Ask (with PROMPT) for one of the room's other participants; return its id."
  (let* ((ps (cl-remove-if (lambda (p) (eq (plist-get p :self) t))
                           (append (plist-get (pairls-command "pairls.participants") :participants) nil)))
         (choices (mapcar (lambda (p) (cons (format "%s (%s) %s" (plist-get p :name) (plist-get p :role)
                                                    (plist-get p :id))
                                            (plist-get p :id)))
                          ps)))
    (unless choices (user-error "pairls: nobody else is in the room"))
    (cdr (assoc (completing-read prompt choices nil t) choices))))

(defun pairls-kick (participant-id)
  "Remove PARTICIPANT-ID from the room (the owner only).
The invite they used admits nobody new until `pairls-rotate-invites'."
  (interactive (list (pairls--read-participant "Remove from the room: ")))
  (pairls-command "pairls.kick" (list :participantId participant-id))
  (message "pairls: removed; M-x pairls-rotate-invites keeps them out for good"))

(defun pairls-set-role (participant-id role)
  "Make PARTICIPANT-ID an editor or a viewer (ROLE, a string; the owner only)."
  (interactive (list (pairls--read-participant "Participant: ")
                     (completing-read "Role: " '("editor" "viewer") nil t)))
  (pairls-command "pairls.setRole" (list :participantId participant-id :role role))
  (message "pairls: now a %s" role))

(defun pairls-rotate-invites ()
  "Replace the room's invites; whoever joined with the old ones is disconnected.
The new editor invite goes to the kill ring."
  (interactive)
  (let* ((r (pairls-command "pairls.rotateInvites"))
         (invite (plist-get r :invite)))
    (setq pairls-last-invite invite)
    (kill-new invite)
    (message "pairls: new invites (the old ones no longer work); editor (in the kill ring): %s viewer: %s"
             invite (plist-get r :viewerInvite))
    r))

(defun pairls-delete-room ()
  "Delete the room and its documents on the hub; everyone is disconnected."
  (interactive)
  (when (or (not (called-interactively-p 'any))
            (yes-or-no-p "Delete the room and its documents on the hub, for everyone? "))
    (pairls-command "pairls.deleteRoom")
    (message "pairls: room deleted")))

;;; History: your own changes undone and redone, the list of changes, earlier revisions.
;;
;; `pairls-undo-mine' undoes your own last change to this document, whoever typed since
;; (nobody else's text is touched; again and again, further back); `pairls-redo-mine' brings
;; back what you undid last.  `pairls-history' lists the document's changes and opens the
;; one you pick as it was then; `pairls-open-revision' opens revision N, read-only (a file
;; under ~/.cache/pairls/revisions).  eglot's hover (eldoc) says who last changed the line at
;; point.  Suggested keys (not set here: pick your own):
;;
;;   (global-set-key (kbd "C-c p u") #'pairls-undo-mine)
;;   (global-set-key (kbd "C-c p r") #'pairls-redo-mine)
;;   (global-set-key (kbd "C-c p h") #'pairls-history)

(defun pairls--this-document ()
  "The uri of the current buffer's file, its last changes sent first.
eglot holds changes back until Emacs is idle (0.5 s); `pairls-command'
does not go through eglot's own requests, which would send them: an
undo right after typing must include what was just typed."
  (unless buffer-file-name (user-error "pairls: this buffer visits no file"))
  (when (and (pairls--current) (fboundp 'eglot--signal-textDocument/didChange))
    (eglot--signal-textDocument/didChange))
  (eglot--path-to-uri buffer-file-name))

(defun pairls-undo-mine ()
  "Undo your own last change to this document; nobody else's text is touched."
  (interactive)
  (let ((r (pairls-command "pairls.undoMine" (list :uri (pairls--this-document)))))
    (message "pairls: undid your last change (rev %s)" (plist-get r :rev))
    r))

(defun pairls-redo-mine ()
  "Redo the change of yours you undid last in this document."
  (interactive)
  (let ((r (pairls-command "pairls.redoMine" (list :uri (pairls--this-document)))))
    (message "pairls: redid your change (rev %s)" (plist-get r :rev))
    r))

(defun pairls-open-revision (rev)
  "Open this document as it was at revision REV, read-only."
  (interactive "nRevision: ")
  ;; the server shows it (window/showDocument, handled above) and answers its uri
  (let* ((r (pairls-command "pairls.openRevision" (list :uri (pairls--this-document) :rev rev)))
         (buf (find-buffer-visiting (eglot--uri-to-path (plist-get r :uri)))))
    ;; (the file is read-only, but root may write it: the buffer says so too)
    (when buf (with-current-buffer buf (setq buffer-read-only t)))
    r))

(defun pairls--describe-change (c)
  (let ((kind (plist-get c :kind))
        (time (plist-get c :time))
        (name (plist-get c :name)))
    (format "rev %-5d %-16s %s UTC  %s  line %d"
            (plist-get c :rev)
            (if (and (stringp name) (not (string-empty-p name))) name "first text")
            (if (stringp time) (replace-regexp-in-string "T" " " (substring time 0 (min 16 (length time)))) "")
            (if (stringp kind)
                (format "%s of rev %s" kind (plist-get c :toggles))
              (format "+%s -%s" (plist-get c :inserted) (plist-get c :deleted)))
            (1+ (plist-get c :line)))))

(defun pairls-history ()
  "List this document's changes, newest first; open the one you pick."
  (interactive)
  (let* ((r (pairls-command "pairls.history" (list :uri (pairls--this-document) :limit 100)))
         (changes (append (plist-get r :changes) nil))
         (choices (mapcar (lambda (c) (cons (pairls--describe-change c) (plist-get c :rev))) changes)))
    (unless choices (user-error "pairls: no changes yet"))
    (let ((pick (completing-read "Open the document as it was after: " choices nil t)))
      (pairls-open-revision (cdr (assoc pick choices))))))

;;; Run it together: run on your machine, everyone follows the output.
;; `pairls-run' runs this file with its language's runner (python3, node, go run, cargo
;; run, bash), or with C-u a command line you type; `pairls-run-task' a task of
;; .pairls/run.toml.  The output goes to .pairls/runs/<id>.log, opened here (read-only).
;; `pairls-ask-to-run' asks someone else to run a command: they choose Run or Decline.

(defun pairls--show-run (r)
  (message "pairls: running (%s); M-x pairls-stop-run stops it" (plist-get r :path))
  ;; the output's own buffer read-only (not whichever is current once eglot has shown it)
  (let ((uri (plist-get (pairls-open-document (plist-get r :path)) :uri)))
    (when uri
      (with-current-buffer (find-file-noselect (eglot--uri-to-path uri))
        (setq buffer-read-only t))))
  r)

(defun pairls-run (&optional command)
  "Run this file for the room; with a prefix argument, a COMMAND line you type."
  (interactive (list (when current-prefix-arg (read-string "Command line: "))))
  (pairls--show-run (pairls-command "pairls.run" (if command (list :command command)
                                                   (list :uri (pairls--this-document))))))

(defun pairls-run-task (task)
  "Run TASK of the workspace's .pairls/run.toml for the room."
  (interactive "sTask: ")
  (pairls--show-run (pairls-command "pairls.run" (list :task task))))

(defun pairls--read-run ()
  (let* ((runs (cl-remove-if-not (lambda (r) (and (eq (plist-get r :mine) t)
                                                  (member (plist-get r :state) '("starting" "running" "stopping"))))
                                 (append (plist-get (pairls-command "pairls.runs") :runs) nil)))
         (choices (mapcar (lambda (r) (cons (format "%s  %s" (plist-get r :runId) (plist-get r :command))
                                            (plist-get r :runId)))
                          runs)))
    (unless choices (user-error "pairls: no run of yours is running"))
    (cdr (assoc (completing-read "Stop: " choices nil t) choices))))

(defun pairls-stop-run (run-id)
  "Stop your run RUN-ID."
  (interactive (list (pairls--read-run)))
  (pairls-command "pairls.stopRun" (list :runId run-id))
  (message "pairls: stopped"))

(defun pairls-ask-to-run (participant-id command)
  "Ask PARTICIPANT-ID to run COMMAND on their machine; they choose Run or Decline."
  (interactive (list (pairls--read-participant "Ask to run: ") (read-string "Command line: ")))
  (let ((r (pairls--request (pairls--server) :workspace/executeCommand
                            (list :command "pairls.requestRun"
                                  :arguments (vector (list :participantId participant-id :command command)))
                            310)))
    (if (eq (plist-get r :accepted) t)
        (pairls--show-run r)
      (message "pairls: declined"))))

(provide 'pairls)
;;; pairls.el ends here
