-- kinema.help: the help registry, with no dependencies, so the library can
-- document its names without loading the REPL. A module registers a text when
-- it loads; the REPL's :help (kinema.repl) reads them.
--   help.document(name, text)   e.g. help.document('data.Loader', 'data.Loader(dataset, {...})')
--   help.docs[name]             the registered text, or nil
local help = {docs = {}}

function help.document(name, text) help.docs[name] = text end

return help
