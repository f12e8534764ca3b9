# Ledgerline — the desktop app's words, Polish (the default language).
# Every message here has its English twin in en.ftl; the build refuses a catalog that lacks one.

app-title = Ledgerline
app-tagline = Szyfrowane biuro rachunkowe: czat, klienci, dokumenty i zadania.

## Onboarding
onboarding-create = Załóż biuro
onboarding-join = Dołącz do biura
onboarding-relay = Adres serwera (relay)
onboarding-firm = Nazwa biura
onboarding-me = Twoje imię i nazwisko
onboarding-code = Kod zaproszenia
onboarding-create-submit = Załóż
onboarding-join-submit = Dołącz
onboarding-fingerprint = Odcisk tego urządzenia
onboarding-fingerprint-help = Przeczytaj go administratorowi, który porówna go u siebie i zatwierdzi Twoje dołączenie. Potem kliknij „Synchronizuj”.
onboarding-working = Chwileczkę…

## The main window
nav-customers = Klienci
nav-search = Szukaj klienta
nav-add-customer = Dodaj klienta
nav-sync = Synchronizuj
nav-synced = Zsynchronizowano: { $messages ->
    [one] { $messages } nowa wiadomość
    [few] { $messages } nowe wiadomości
   *[other] { $messages } nowych wiadomości
}
nav-language = Język
nav-signed-in = { $me } · { $firm }

customer-name = Nazwa firmy
customer-nip = NIP
customer-add-submit = Dodaj
customer-none = Brak klientów. Dodaj pierwszego.
customer-pick = Wybierz klienta z listy.
customer-lead = potencjalny klient

tab-timeline = Oś czasu
tab-chat = Czat
tab-tasks = Zadania

timeline-empty = Nic tu jeszcze nie ma.
timeline-kind-message = Wiadomość
timeline-kind-note = Notatka
timeline-kind-task = Zadanie
timeline-kind-event = Wydarzenie
timeline-kind-document = Dokument

chat-empty = Brak wiadomości. Napisz pierwszą.
chat-placeholder = Napisz wiadomość…
chat-send = Wyślij
chat-waiting = (czeka na klucz)
chat-deleted = (usunięta)

task-title = Zadanie
task-due = Termin
task-add-submit = Dodaj zadanie
task-none = Brak zadań.
task-open = otwarte
task-done = zrobione

error-title = Nie udało się
