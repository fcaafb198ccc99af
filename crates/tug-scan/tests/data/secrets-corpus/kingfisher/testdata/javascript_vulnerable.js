var person = {};
var animal = {};
person.name = 'chris';
person.password = 'hunter2';
animal.password = 'foo123';

var person = "Bob Doe", carName = "Buick", price = 300;
var password = "qwerty123";
var a;
var secret_key = "this is a secret key";

var person = "John Doe",
    carName = "Volvo",
    price = 200;

var this_password = "correct horse battery staple"; //NOKINGFISHER

let foobaz = 75;

const number = 42;

let newpassword = "sunshine123";

let key_id = "AKIA6ODU5DHT7VPXGCE4";
let aws_secret = "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";
let hidden_passphrase = "blink182";